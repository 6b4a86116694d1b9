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

/// `hrm solve` with `args`: (success, stdout, stderr).
fn solve_cmd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(HRM)
        .arg("solve")
        .args(args)
        .args(["--device", "cpu", "--quiet"])
        .output()
        .expect("running hrm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A run of the swap family trained for two steps only (what it answers does not matter here), and three unseen
/// tasks: (run folder, unseen folder, unseen ids).
fn two_step_run(root: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let (seen, unseen) = (root.join("seen"), root.join("unseen"));
    hrm_train::synthetic::write_swap_family(&seen, "seen", 8, 1).unwrap();
    let new_ids = hrm_train::synthetic::write_swap_family(&unseen, "new", 3, 2).unwrap();
    let recipe = root.join("family.toml");
    std::fs::write(&recipe, hrm_train::synthetic::SWAP_FAMILY_RECIPE).unwrap();
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
        "0",
        "--out",
        s(&dataset),
    ]);
    let run = root.join("run");
    hrm(&[
        "train",
        s(&recipe),
        "--dataset",
        s(&dataset),
        "--run",
        s(&run),
        "--device",
        "cpu",
        "--quiet",
        "--set",
        "train.max_steps=2",
        "--set",
        "train.global_batch_size=8",
    ]);
    (run, unseen, new_ids)
}

/// The printed `(N test inputs, P padded, Q placeholders)` of a solve summary.
fn printed_counts(text: &str) -> (usize, usize) {
    let line = text
        .lines()
        .find(|l| l.contains("test inputs"))
        .unwrap_or_else(|| panic!("no submission line in {text}"));
    let number_before = |word: &str| -> usize {
        let head = &line[..line.find(word).unwrap()];
        head.split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        number_before(" test inputs"),
        number_before(" placeholders"),
    )
}

#[test]
fn solve_reads_renamed_challenges_and_refuses_what_it_cannot_answer() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (run, unseen, ids) = two_step_run(root);
    let fast = ["--steps", "1", "--num-aug", "0", "--batch-size", "4"];
    let solve = |tasks: &[&Path], out: &Path, extra: &[&str]| {
        let mut args = vec!["--run", s(&run), "--out", s(out)];
        args.extend(tasks.iter().map(|t| s(t)));
        args.extend(fast);
        args.extend(extra);
        solve_cmd(&args)
    };

    // The three unseen tasks as one challenges file named `challenges.json`, and a task too big for the canvas.
    let mut combined = serde_json::Map::new();
    for id in &ids {
        let text = std::fs::read_to_string(unseen.join(format!("{id}.json"))).unwrap();
        combined.insert(id.clone(), serde_json::from_str(&text).unwrap());
    }
    let challenges = root.join("challenges.json");
    std::fs::write(&challenges, serde_json::Value::Object(combined).to_string()).unwrap();
    let five = vec![vec![1u8; 5]; 5];
    let big = root.join("big.json");
    let task =
        serde_json::json!({"train": [{"input": five, "output": five}], "test": [{"input": five}]});
    std::fs::write(&big, task.to_string()).unwrap();
    let out = root.join("solved");
    let (ok, text, err) = solve(&[&challenges, &big], &out, &[]);
    assert!(ok, "{text}{err}");
    let submission = Submission::read(&out.join("submission.json")).unwrap();
    let mut expected: Vec<(String, usize)> = ids.iter().map(|id| (id.clone(), 1)).collect();
    expected.push(("big".into(), 1));
    submission.validate(&expected).unwrap();
    // The summary counts what the file holds, placeholders of failed tasks included, and names only what exists.
    let entries: usize = submission.0.values().map(Vec::len).sum();
    let placeholders = submission
        .0
        .values()
        .flatten()
        .filter(|p| p.attempt_1 == [[0]] && p.attempt_2 == [[0]])
        .count();
    assert_eq!(printed_counts(&text), (entries, placeholders), "{text}");
    assert!(placeholders >= 1, "the big task is a placeholder");
    assert!(text.contains("report.html") && out.join("report/report.html").is_file());

    // The ARC Prize sample's tasks under that name are read as tasks (all too big for the 4x4 canvas): every
    // task failed, so the solve fails naming them, and writes nothing.
    let kaggle: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(kaggle_challenges()).unwrap()).unwrap();
    let three: serde_json::Map<_, _> = kaggle.into_iter().take(3).collect();
    let first = three.keys().next().unwrap().clone();
    let prize = root.join("prize").join("challenges.json");
    std::fs::create_dir_all(prize.parent().unwrap()).unwrap();
    std::fs::write(&prize, serde_json::Value::Object(three).to_string()).unwrap();
    let (ok, _, err) = solve(&[&prize], &root.join("prize-out"), &[]);
    assert!(
        !ok && err.contains(&first) && err.contains("canvas"),
        "{err}"
    );
    assert!(!err.contains("missing section"), "{err}");
    assert!(!root.join("prize-out").exists());

    // A missing file and an empty folder fail naming the path; --force keeps the complete result as it was.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for bad in [root.join("nonexistent.json"), empty] {
        let (ok, _, err) = solve(&[&bad], &out, &["--force"]);
        assert!(!ok && err.contains(s(&bad)), "{err}");
        assert_eq!(
            Submission::read(&out.join("submission.json")).unwrap(),
            submission,
            "a failed --force solve keeps the result"
        );
    }

    // --force on a folder that is not a solve's is refused, and nothing in it is deleted.
    let notes = root.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("notes.txt"), "mine").unwrap();
    let (ok, _, err) = solve(&[&challenges], &notes, &["--force"]);
    assert!(!ok && err.contains("notes.txt"), "{err}");
    assert_eq!(
        std::fs::read_to_string(notes.join("notes.txt")).unwrap(),
        "mine"
    );

    // Ctrl-C while fitting: exit 130 like `hrm train`, with nothing written but the tasks fitted so far kept;
    // the same command again continues with the others.
    let stopped = root.join("stopped");
    let kept = root.join(".stopped.solve-progress");
    let args = [
        "solve",
        "--run",
        s(&run),
        s(&challenges),
        "--out",
        s(&stopped),
        "--steps",
        "100000000",
        "--max-seconds-per-task",
        "2",
        "--device",
        "cpu",
        "--quiet",
    ];
    let mut child = Command::new(HRM)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !kept.join("0.json").is_file() {
        assert!(start.elapsed().as_secs() < 120, "no task was kept");
        assert!(child.try_wait().unwrap().is_none(), "solve ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() > 240 {
            child.kill().unwrap();
            panic!("solve did not stop on SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("run the same command again"),
        "{err}"
    );
    assert!(!stopped.exists());
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join("0.json")).unwrap()).unwrap();
    let again = Command::new(HRM).args(args).output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let tasks = solve_json(&stopped)["tasks"].as_array().unwrap().clone();
    let resumed = tasks.iter().find(|t| t["id"] == first["id"]).unwrap();
    assert_eq!(
        resumed["fit_seconds"], first["fit_seconds"],
        "the kept task is not fitted again"
    );
    assert_eq!(tasks.len(), 3);
    assert!(
        !kept.exists(),
        "the kept fits are removed once the folder is written"
    );
}

/// The ARC Prize sample's evaluation challenges file.
fn kaggle_challenges() -> std::path::PathBuf {
    std::env::var_os("HRM_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("../../../shared/datasets"))
        .join("arc-kaggle/arc-agi_evaluation_challenges.json")
}

#[test]
fn a_fitting_batch_too_large_for_memory_is_refused_with_the_rows_that_fit() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (run, unseen, _) = two_step_run(tmp.path());
    let out = tmp.path().join("solved");
    let (ok, text, err) = solve_cmd(&[
        "--run",
        s(&run),
        "--out",
        s(&out),
        s(&unseen),
        "--steps",
        "1",
        "--num-aug",
        "0",
        "--batch-size",
        "100000000000",
    ]);
    assert!(!ok, "{text}{err}");
    assert!(
        err.contains("--batch-size")
            && err.contains("100000000000 rows")
            && err.contains("rows fit"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written: {err}");
}
