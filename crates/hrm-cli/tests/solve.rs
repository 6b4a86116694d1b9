//! `hrm solve` end to end: a small model trained on a family of tasks (a task-specific colour swap) answers tasks
//! of the family that were never in its training build, only by fitting their new puzzle rows; without the fit it
//! answers none. A task with a hidden output goes through; a broken task and one too big for the canvas are
//! reported while the rest go on; the submission validates against the competition format.

use std::path::Path;
use std::process::Command;

use hrm_eval::submission::Submission;
use hrm_grid::Grid;

const HRM: &str = env!("CARGO_BIN_EXE_hrm");

/// The two tests train and solve one after the other: libtorch's threads of two runs at once on a 2-core
/// machine slow both down several times over.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hrm(args: &[&str]) -> String {
    let out = Command::new(HRM).args(args).output().expect("running hrm");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "hrm {args:?} failed:\n{text}");
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every grid of a task file (inputs and outputs of all pairs).
fn task_grids(path: &Path) -> Vec<Grid> {
    let task = hrm_grid::arc::load_task(path).unwrap();
    task.train
        .iter()
        .chain(&task.test)
        .flat_map(|p| std::iter::once(p.input.clone()).chain(p.output.clone()))
        .collect()
}

/// Every grid in a dataset split (inputs and labels), cropped wherever it was translated to.
fn split_grids(dataset: &Path, split: &str) -> Vec<Grid> {
    let data = hrm_data::load_split(dataset, split).unwrap();
    let side = 4;
    let crop = |t: &[u8]| {
        let first = t.iter().position(|&x| x != 0)?;
        hrm_grid::codec::crop_arc_canvas_at(t, side, first / side, first % side)
    };
    (0..data.num_examples())
        .flat_map(|r| [crop(data.input(r)), crop(data.label(r))])
        .flatten()
        .collect()
}

fn solve_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("solve.json")).unwrap()).unwrap()
}

/// The family's seen and unseen tasks, a build of the seen ones (checked to hold no grid of an unseen task) and a
/// run trained on it with the recipe's settings changed by `sets`: (run folder, unseen folder, unseen ids).
fn train_family(
    root: &Path,
    sets: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let (seen, unseen) = (root.join("seen"), root.join("unseen"));
    hrm_train::synthetic::write_swap_family(&seen, "seen", 200, 1).unwrap();
    let new_ids = hrm_train::synthetic::write_swap_family(&unseen, "new", 12, 2).unwrap();
    let recipe = root.join("family.toml");
    std::fs::write(&recipe, hrm_train::synthetic::SWAP_FAMILY_RECIPE).unwrap();

    // Build from the seen tasks only, and check that no grid of an unseen task is in the build.
    let dataset = root.join("dataset");
    let source = format!("test={}", s(&seen));
    hrm(&[
        "build-data",
        "arc1",
        "--source",
        &source,
        "--canvas",
        "4",
        "--num-aug",
        "3",
        "--seed",
        "0",
        "--out",
        s(&dataset),
    ]);
    let built: std::collections::HashSet<Grid> = split_grids(&dataset, "train")
        .into_iter()
        .chain(split_grids(&dataset, "test"))
        .collect();
    assert!(built.len() > 1000, "the build holds the seen tasks' grids");
    let identifiers = hrm_data::layout::load_identifiers(&dataset).unwrap();
    for id in &new_ids {
        assert!(
            !identifiers.iter().any(|n| n.starts_with(id.as_str())),
            "{id} is not in the build"
        );
        for g in task_grids(&unseen.join(format!("{id}.json"))) {
            assert!(
                !built.contains(&g),
                "a grid of {id} is in the training build"
            );
        }
    }
    let run = root.join("run");
    let mut args = vec![
        "train",
        s(&recipe),
        "--dataset",
        s(&dataset),
        "--run",
        s(&run),
        "--device",
        "cpu",
        "--quiet",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    hrm(&args);
    (run, unseen, new_ids)
}

/// pass@2 solved of the unseen tasks with `steps` fitting steps, and the solve folder's summary.
fn solve_unseen(
    run: &Path,
    tasks: &[&Path],
    out: &Path,
    steps: &str,
) -> (serde_json::Value, String) {
    let mut args = vec!["solve", "--run", s(run)];
    args.extend(tasks.iter().map(|t| s(t)));
    args.extend([
        "--out",
        s(out),
        "--steps",
        steps,
        "--device",
        "cpu",
        "--quiet",
    ]);
    let text = hrm(&args);
    (solve_json(out), text)
}

#[test]
fn solve_answers_tasks_never_in_the_training_build() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (run, unseen, new_ids) = train_family(root, &[]);
    let extra = root.join("extra");

    // Extra tasks: one with its test output hidden, one broken, one too big for the 4x4 canvas.
    std::fs::create_dir_all(&extra).unwrap();
    let mut hidden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(unseen.join("new000.json")).unwrap())
            .unwrap();
    hidden["test"][0].as_object_mut().unwrap().remove("output");
    std::fs::write(extra.join("hidden.json"), hidden.to_string()).unwrap();
    std::fs::write(extra.join("broken.json"), "{\"train\": [").unwrap();
    let five = vec![vec![1u8; 5]; 5];
    let big =
        serde_json::json!({"train": [{"input": five, "output": five}], "test": [{"input": five}]});
    std::fs::write(extra.join("big.json"), big.to_string()).unwrap();

    let out = root.join("solved");
    let text = hrm(&[
        "solve",
        "--run",
        s(&run),
        s(&unseen),
        s(&extra),
        "--out",
        s(&out),
        "--steps",
        "150",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let summary = solve_json(&out);
    let tasks = summary["tasks"].as_array().unwrap();
    let outcome = |id: &str| {
        tasks
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {text}"))
    };
    let solved = new_ids
        .iter()
        .filter(|id| outcome(id)["pass_at_2"] == true)
        .count();
    assert!(
        solved >= 10,
        "{solved} of 12 unseen tasks solved at pass@2:\n{text}"
    );
    assert_eq!(summary["solved_at_2"], solved);
    assert!(outcome("hidden")["error"].is_null(), "{text}");
    assert!(
        outcome("hidden")["pass_at_2"].is_null(),
        "an unknown output is not scored"
    );
    assert!(
        outcome("broken")["error"]
            .as_str()
            .unwrap()
            .contains("JSON"),
        "{text}"
    );
    assert!(
        outcome("big")["error"].as_str().unwrap().contains("canvas"),
        "{text}"
    );
    assert!(
        text.contains("broken") && text.contains("failed"),
        "failures are reported:\n{text}"
    );
    assert!(out.join("report/report.html").is_file());
    assert!(out.join("predictions/meta.json").is_file());

    // The submission covers every task it could read (the broken one has no test count) in the competition format.
    let submission = Submission::read(&out.join("submission.json")).unwrap();
    let mut expected: Vec<(String, usize)> = new_ids.iter().map(|id| (id.clone(), 1)).collect();
    expected.push(("hidden".into(), 1));
    expected.push(("big".into(), 1));
    submission.validate(&expected).unwrap();
    let truth = hrm_grid::arc::load_task(&unseen.join("new001.json"))
        .unwrap()
        .test[0]
        .output
        .clone()
        .unwrap();
    if outcome("new001")["pass_at_1"] == true {
        let first = &submission.0["new001"][0].attempt_1;
        assert_eq!(Grid::from_rows(first).unwrap(), truth);
    }

    // The control: the same network without fitting the new rows solves (almost) none.
    let control = root.join("unfitted");
    hrm(&[
        "solve",
        "--run",
        s(&run),
        s(&unseen),
        "--out",
        s(&control),
        "--steps",
        "0",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let unfitted = solve_json(&control)["solved_at_2"].as_u64().unwrap() as usize;
    assert!(
        unfitted + 8 <= solved,
        "fitting matters: {unfitted} without, {solved} with"
    );
    // An existing output folder is kept unless --force.
    let again = Command::new(HRM)
        .args([
            "solve",
            "--run",
            s(&run),
            s(&unseen),
            "--out",
            s(&control),
            "--steps",
            "0",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn solve_answers_new_tasks_with_a_trm_run_too() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let sets = [r#"arch.name="trm""#, "arch.H_layers=0", "train.ema=true"];
    let (run, unseen, _) = train_family(root, &sets);
    let (summary, text) = solve_unseen(&run, &[&unseen], &root.join("solved"), "150");
    assert_eq!(
        summary["weights"], "ema",
        "a run trained with an EMA solves with the EMA weights"
    );
    let solved = summary["solved_at_2"].as_u64().unwrap();
    assert!(
        solved >= 10,
        "{solved} of 12 unseen tasks solved at pass@2:\n{text}"
    );
    let unfitted = solve_unseen(&run, &[&unseen], &root.join("unfitted"), "0").0["solved_at_2"]
        .as_u64()
        .unwrap();
    assert!(
        unfitted + 8 <= solved,
        "fitting matters: {unfitted} without, {solved} with"
    );
}
