//! TRM's ARC layout against TRM's own builder: `golden/trm-build/expected` is what TRM's
//! `dataset/build_arc_dataset.py` wrote for `golden/trm-build/in` (see the golden README); the Rust build must
//! write the same files, byte for byte, and load through this crate's layout readers. Also the errors of bad
//! sources.

use hrm_data::layout::{load_identifiers, load_split};
use hrm_data::trm_arc::{build_trm_arc, TrmArcConfig, TrmSubset};
use hrm_data::DataError;
use std::path::{Path, PathBuf};

fn golden_build() -> PathBuf {
    hrm_testkit::golden_dir().join("trm-build")
}

/// The golden command's subsets: training, evaluation (the test set), concept.
fn golden_config(input: &Path) -> TrmArcConfig {
    let subset = |name: &str, test| TrmSubset {
        challenges: input.join(format!("mini_{name}_challenges.json")),
        test,
    };
    TrmArcConfig {
        subsets: vec![
            subset("training", false),
            subset("evaluation", true),
            subset("concept", false),
        ],
        num_aug: 8,
        seed: 42,
    }
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Compares two folders file by file; the message names the first differing file and byte offset.
fn compare_trees(expected: &Path, actual: &Path) -> Result<(), String> {
    let (want, got) = (files_under(expected), files_under(actual));
    if want != got {
        return Err(format!("file lists differ: expected {want:?}, got {got:?}"));
    }
    for rel in &want {
        let a = std::fs::read(expected.join(rel)).unwrap();
        let b = std::fs::read(actual.join(rel)).unwrap();
        if a != b {
            let offset = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            return Err(format!(
                "{} differs at byte {offset} (expected {} bytes, got {}): expected {:?}, got {:?}",
                rel.display(),
                a.len(),
                b.len(),
                String::from_utf8_lossy(&a[offset..a.len().min(offset + 40)]),
                String::from_utf8_lossy(&b[offset..b.len().min(offset + 40)]),
            ));
        }
    }
    Ok(())
}

#[test]
fn matches_trm_builder_byte_for_byte() {
    let golden = golden_build();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("trm");
    let stats = build_trm_arc(&golden_config(&golden.join("in")), &out).unwrap();
    assert_eq!(stats.identifiers, 181, "{stats}");
    assert_eq!(stats.tasks, 20);
    if let Err(e) = compare_trees(&golden.join("expected"), &out) {
        panic!("TRM layout differs from TRM's builder: {e}");
    }
    // The rest of hrm reads it through the layout readers.
    let ids = load_identifiers(&out).unwrap();
    assert_eq!(ids.len(), 181);
    for split in ["train", "test"] {
        let data = load_split(&out, split).unwrap();
        assert_eq!(data.metadata.num_puzzle_identifiers, 181);
    }
}

#[test]
fn another_seed_gives_other_bytes() {
    // The golden comparison depends on the seed: a different stream must not match.
    let golden = golden_build();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("trm");
    let mut cfg = golden_config(&golden.join("in"));
    cfg.seed = 43;
    build_trm_arc(&cfg, &out).unwrap();
    assert!(compare_trees(&golden.join("expected"), &out).is_err());
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TASK: &str =
    r#"{"t1": {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}]}}"#;

fn err_of(subsets: Vec<TrmSubset>, out: &Path) -> String {
    let cfg = TrmArcConfig {
        subsets,
        num_aug: 2,
        seed: 0,
    };
    let e: DataError = build_trm_arc(&cfg, out).unwrap_err();
    assert!(!out.exists(), "nothing written on error");
    e.to_string()
}

#[test]
fn bad_sources_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("out");
    // A single task is not a challenges file (one named otherwise but holding tasks is: by content, not name).
    let task_file = write(
        dir,
        "task.json",
        r#"{"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}]}"#,
    );
    let e = err_of(
        vec![TrmSubset {
            challenges: task_file,
            test: true,
        }],
        &out,
    );
    assert!(
        e.contains("task.json") && e.contains("challenges file"),
        "{e}"
    );

    let train = write(dir, "p_training_challenges.json", TASK);
    let e = err_of(
        vec![TrmSubset {
            challenges: train.clone(),
            test: false,
        }],
        &out,
    );
    assert!(e.contains("test="), "{e}");

    // A solutions file that lacks a task of the challenges.
    let ev = write(dir, "p_evaluation_challenges.json", TASK);
    write(dir, "p_evaluation_solutions.json", r#"{"other": [[[1]]]}"#);
    let subsets = vec![
        TrmSubset {
            challenges: train.clone(),
            test: false,
        },
        TrmSubset {
            challenges: ev.clone(),
            test: true,
        },
    ];
    let e = err_of(subsets.clone(), &out);
    assert!(
        e.contains("p_evaluation_solutions.json") && e.contains("t1"),
        "{e}"
    );

    // A cell that is not a colour names file, task, section, pair and field.
    write(dir, "p_evaluation_solutions.json", r#"{"t1": [[[12]]]}"#);
    let e = err_of(subsets, &out);
    assert!(
        e.contains("p_evaluation_challenges.json") && e.contains("t1"),
        "{e}"
    );
    assert!(
        e.contains("\"test\"") && e.contains("\"output\"") && e.contains("12"),
        "{e}"
    );
}

#[test]
fn missing_solutions_give_dummy_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("out");
    let train = write(dir, "p_training_challenges.json", TASK);
    let ev = write(
        dir,
        "q_evaluation_challenges.json",
        TASK.replace("t1", "t2").as_str(),
    );
    let cfg = TrmArcConfig {
        subsets: vec![
            TrmSubset {
                challenges: train,
                test: false,
            },
            TrmSubset {
                challenges: ev,
                test: true,
            },
        ],
        num_aug: 0,
        seed: 0,
    };
    let stats = build_trm_arc(&cfg, &out).unwrap();
    assert_eq!(stats.identifiers, 3);
    let puzzles = std::fs::read_to_string(out.join("test_puzzles.json")).unwrap();
    assert_eq!(
        puzzles,
        r#"{"t2": {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]], "output": [[0]]}]}}"#
    );
    let ids = std::fs::read_to_string(out.join("identifiers.json")).unwrap();
    assert_eq!(ids, r#"["<blank>", "t1", "t2"]"#);
}

#[test]
fn duplicate_variants_are_skipped() {
    // 1x1 grids of colours 0 and 1: every dihedral map is the identity and only the image of colour 1 matters,
    // so the task has 9 distinct variants (the original included) however many are asked for.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("out");
    let task = r#"{"one": {"train": [{"input": [[1]], "output": [[0]]}], "test": [{"input": [[0]], "output": [[1]]}]}}"#;
    let ev = write(dir, "p_evaluation_challenges.json", task);
    let cfg = TrmArcConfig {
        subsets: vec![TrmSubset {
            challenges: ev,
            test: true,
        }],
        num_aug: 20,
        seed: 7,
    };
    let stats = build_trm_arc(&cfg, &out).unwrap();
    assert_eq!((stats.identifiers, stats.not_full), (10, 1), "{stats}");
    let ids = load_identifiers(&out).unwrap();
    assert!(ids[2..].iter().all(|n| n.starts_with("one|||t")), "{ids:?}");
    // The image of colour 1 is the second digit of the mapping: 8 augmentations, 8 other images.
    let mut images: Vec<char> = ids[2..]
        .iter()
        .map(|n| n.chars().nth_back(8).unwrap())
        .collect();
    images.sort_unstable();
    images.dedup();
    assert_eq!(
        images.len(),
        8,
        "each augmentation maps colour 1 elsewhere: {ids:?}"
    );
}
