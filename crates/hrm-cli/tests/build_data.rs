//! `hrm build-data` as a process: `--force` on bad input fails and leaves the old dataset intact and loadable
//! (nothing is removed before the new dataset is complete), and absurd sizes are refused up front.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const HRM: &str = env!("CARGO_BIN_EXE_hrm");

/// A raw-data folder with the first `n` ARC-AGI-1 evaluation tasks of the shared data (and one as ConceptARC).
fn raw_data(root: &Path, n: usize) -> PathBuf {
    let shared = std::env::var_os("HRM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../../../shared/datasets"));
    let src = shared.join("arc-agi-1").join("evaluation");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e} (set HRM_DATA_DIR)", src.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let data = root.join("raw");
    let eval = data.join("arc-agi-1").join("evaluation");
    let concept = data.join("concept-arc").join("corpus");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::create_dir_all(&concept).unwrap();
    for p in names.iter().take(n) {
        std::fs::copy(p, eval.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(&names[n], concept.join("c1.json")).unwrap();
    data
}

fn build(data: &Path, out: &Path, num_aug: &str, extra: &[&str]) -> std::process::Output {
    Command::new(HRM)
        .args(["build-data", "arc1", "--data-dir"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--num-aug", num_aug, "--threads", "1"])
        .args(extra)
        .output()
        .expect("running hrm")
}

fn siblings(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn forced_build_on_bad_input_keeps_the_old_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let data = raw_data(tmp.path(), 3);
    let parent = tmp.path().join("built");
    let out = parent.join("arc");
    let first = build(&data, &out, "2", &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = hrm_data::load_split(&out, "test").unwrap();
    let ids_before = hrm_data::layout::load_identifiers(&out).unwrap();

    // Without --force an existing dataset is refused.
    let again = build(&data, &out, "2", &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // A task file that does not parse: the forced build fails...
    std::fs::write(
        data.join("arc-agi-1/evaluation/ffffffff.json"),
        r#"{"train": [{"input": [[1]], "output": "#,
    )
    .unwrap();
    let forced = build(&data, &out, "2", &["--force"]);
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(
        !forced.status.success(),
        "a bad task file must fail the build"
    );
    assert!(stderr.contains("ffffffff.json"), "{stderr}");
    // ...and the old dataset is still there, complete and loadable, with no litter beside it.
    assert_eq!(hrm_data::load_split(&out, "test").unwrap(), before);
    hrm_data::load_split(&out, "train").unwrap();
    assert_eq!(
        hrm_data::layout::load_identifiers(&out).unwrap(),
        ids_before
    );
    assert_eq!(siblings(&parent), ["arc"]);

    // A forced build on good input replaces it.
    std::fs::remove_file(data.join("arc-agi-1/evaluation/ffffffff.json")).unwrap();
    let replaced = build(&data, &out, "1", &["--force"]);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    assert_ne!(hrm_data::load_split(&out, "test").unwrap(), before);
    assert_eq!(siblings(&parent), ["arc"]);
}

#[test]
fn absurd_num_aug_is_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    let data = raw_data(tmp.path(), 2);
    let out = tmp.path().join("arc");
    let start = Instant::now();
    let r = build(&data, &out, "100000000000", &[]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "refused only after {:?}",
        start.elapsed()
    );
    assert!(
        stderr.contains("num_aug") && stderr.contains("100000000000"),
        "{stderr}"
    );
    assert!(stderr.contains("10000"), "{stderr}");
    assert!(!out.exists());
    assert_eq!(siblings(tmp.path()), ["raw"]);
}

/// `--layout trm`: the golden mini inputs build (TRM's own bytes are checked in hrm-data's `trm_layout` test),
/// and options TRM's builder lacks, a missing `test=` subset and a source that is not a challenges file are refused
/// naming the flag or file, with nothing written.
#[test]
fn trm_layout_flags() {
    let golden = std::env::var_os("HRM_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../../../shared/golden"));
    let input = golden.join("trm-build").join("in");
    let src = |name: &str| {
        input
            .join(format!("mini_{name}_challenges.json"))
            .display()
            .to_string()
    };
    let (training, evaluation, concept) = (src("training"), src("evaluation"), src("concept"));
    let test_eval = format!("test={evaluation}");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("trm");
    let run = |extra: &[&str]| {
        Command::new(HRM)
            .args([
                "build-data",
                "arc1",
                "--layout",
                "trm",
                "--num-aug",
                "8",
                "--out",
            ])
            .arg(&out)
            .args(extra)
            .output()
            .expect("running hrm")
    };
    let sources = [
        "--source", &training, "--source", &test_eval, "--source", &concept,
    ];
    let refusals: [(Vec<&str>, &str); 4] = [
        ([&sources[..], &["--canvas", "10"]].concat(), "--canvas"),
        (
            [&sources[..], &["--max-tasks", "3"]].concat(),
            "--max-tasks",
        ),
        (
            vec!["--source", &training, "--source", &evaluation],
            "test=",
        ),
        (
            vec!["--source", "Cargo.toml", "--source", &test_eval],
            "Cargo.toml",
        ),
    ];
    for (args, named) in refusals {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(named),
            "{args:?}: {err}"
        );
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
    let o = run(&sources);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("181 puzzle identifiers"), "{text}");
    let expected = golden
        .join("trm-build")
        .join("expected")
        .join("identifiers.json");
    assert_eq!(
        std::fs::read(out.join("identifiers.json")).unwrap(),
        std::fs::read(expected).unwrap()
    );
}

/// The ARC Prize sample's challenges file (`arc-agi_<subset>_challenges.json`).
fn kaggle_file(name: &str) -> PathBuf {
    std::env::var_os("HRM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../../../shared/datasets"))
        .join("arc-kaggle")
        .join(name)
}

/// The first `n` tasks of an ARC Prize challenges file, as a JSON object written to `out` (in file order).
fn first_challenges(n: usize, out: &Path) -> Vec<String> {
    let path = kaggle_file("arc-agi_evaluation_challenges.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set HRM_DATA_DIR)", path.display()));
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let kept: serde_json::Map<String, serde_json::Value> = all.into_iter().take(n).collect();
    std::fs::write(out, serde_json::Value::Object(kept.clone()).to_string()).unwrap();
    kept.keys().cloned().collect()
}

#[test]
fn a_challenges_file_is_recognised_by_what_it_holds_not_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("challenges.json");
    let ids = first_challenges(3, &file);
    let out = tmp.path().join("arc");
    let r = Command::new(HRM)
        .args(["build-data", "arc1", "--source"])
        .arg(format!("test={}", file.display()))
        .arg("--out")
        .arg(&out)
        .args(["--num-aug", "0", "--threads", "1"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let names = hrm_data::layout::load_identifiers(&out).unwrap();
    for id in &ids {
        assert!(names.iter().any(|n| n == id), "{id} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "challenges"), "{names:?}");
}

#[test]
fn forced_build_refuses_a_folder_that_is_not_a_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let data = raw_data(tmp.path(), 2);
    // A folder holding someone's notes, and one holding a training run.
    let notes = tmp.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("notes.txt"), "mine").unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(run.join("checkpoints/step_10")).unwrap();
    std::fs::write(run.join("checkpoints/step_10/model.safetensors"), "weights").unwrap();
    std::fs::write(run.join("metrics.jsonl"), "{}\n").unwrap();
    for (dir, kept) in [
        (&notes, &["notes.txt"][..]),
        (&run, &["checkpoints", "metrics.jsonl"]),
    ] {
        let r = build(&data, dir, "1", &["--force"]);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{} was replaced", dir.display());
        assert!(
            kept.iter().any(|k| stderr.contains(k)) && stderr.contains("refusing"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(notes.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(run.join("checkpoints/step_10/model.safetensors").is_file());
    assert!(run.join("metrics.jsonl").is_file());
    // A dataset is still replaced.
    let out = tmp.path().join("arc");
    assert!(build(&data, &out, "1", &[]).status.success());
    let again = build(&data, &out, "0", &["--force"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn a_canvas_too_small_for_every_task_names_the_count_and_the_smallest_that_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = raw_data(tmp.path(), 3);
    // The smallest canvas holding one task: over the tasks, the largest side of any of its grids.
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["arc-agi-1/evaluation", "concept-arc/corpus"] {
        for e in std::fs::read_dir(data.join(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    let smallest = files
        .iter()
        .map(|f| {
            let t = hrm_grid::arc::load_task(f).unwrap();
            let grids = t.train.iter().chain(&t.test);
            grids
                .flat_map(|p| [Some(&p.input), p.output.as_ref()])
                .flatten()
                .map(|g| g.rows().max(g.cols()))
                .max()
                .unwrap()
        })
        .min()
        .unwrap();
    let out = tmp.path().join("out");
    let r = build(&data, &out, "1", &["--canvas", &(smallest - 1).to_string()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} tasks were read", files.len()))
            && err.contains(&format!("none fits the {0}x{0} canvas", smallest - 1))
            && err.contains(&format!("--canvas {smallest}")),
        "{err}"
    );
    assert!(!out.exists());
    let r = build(&data, &out, "1", &["--canvas", &smallest.to_string()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}
