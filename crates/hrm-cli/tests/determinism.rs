//! Same seed and same threads, same run: two builds of one small ARC dataset are byte-identical, and two
//! trainings of it with the same seed and `--threads` write the same `metrics.jsonl` and the same predictions
//! (the thread count is part of a run: it changes the order of floating-point sums).

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// Every file under `dir`, relative, with its bytes, sorted by path.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_same_seed_and_threads_give_the_same_build_metrics_and_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, recipe) = setup(tmp.path());
    let tasks = tmp.path().join("tasks");
    hrm_train::synthetic::write_swap_family(&tasks, "t", 6, 5).unwrap();
    let source = format!("test={}", tasks.display());
    let build = |out: &Path| {
        let o = out.to_str().unwrap();
        hrm_ok(&[
            "build-data",
            "arc1",
            "--source",
            &source,
            "--canvas",
            "4",
            "--num-aug",
            "3",
            "--seed",
            "7",
            "--out",
            o,
        ]);
    };
    let (b1, b2) = (tmp.path().join("b1"), tmp.path().join("b2"));
    build(&b1);
    build(&b2);
    assert_eq!(files(&b1), files(&b2), "two builds with one seed differ");

    let r = recipe.to_str().unwrap();
    let d = b1.to_str().unwrap();
    let mut metrics = Vec::new();
    let mut preds = Vec::new();
    for name in ["run1", "run2"] {
        let run = tmp.path().join(name);
        let u = run.to_str().unwrap();
        let mut args = train_args(r, d, u);
        args.extend(["--set", "train.max_steps=8", "--threads", "2"]);
        hrm_ok(&args);
        metrics.push(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap());
        let out = tmp.path().join(format!("{name}-preds"));
        let o = out.to_str().unwrap();
        hrm_ok(&[
            "predict",
            "--run",
            u,
            "--out",
            o,
            "--device",
            "cpu",
            "--quiet",
            "--threads",
            "2",
        ]);
        preds.push(std::fs::read(out.join("preds.npy")).unwrap());
    }
    assert!(metrics[0].lines().count() >= 8, "{}", metrics[0]);
    assert_eq!(
        metrics[0], metrics[1],
        "two runs with one seed and one thread count differ"
    );
    assert_eq!(preds[0], preds[1], "their predictions differ");
}
