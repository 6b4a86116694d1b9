//! Fuzzing the ARC task parser ([`hrm_grid::arc::parse_task`] and [`hrm_grid::arc::load_task`]) with arbitrary
//! bytes, mutated valid tasks and the seed corpus in `tests/fuzz-corpus/arc/`: nothing may panic; malformed
//! input is an error naming the file. Bounded (256 cases per property) so the set runs in a few seconds.

use hrm_grid::arc::{load_task, parse_task};
use hrm_testkit::mutate::{apply, edit, JSON_FRAGMENTS};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const VALID: &str = r#"{"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]},
 {"input": [[0, 5, 5]], "output": [[5], [5], [0]]}],
 "test": [{"input": [[7, 8], [9, 0]], "output": [[0, 9], [8, 7]]}]}"#;

fn parse(text: &str) -> Result<(), String> {
    let path = Path::new("fuzz/task.json");
    match parse_task("task", text, path) {
        Ok(task) => {
            // A parsed task holds only valid grids.
            for p in task.train.iter().chain(&task.test) {
                assert!((1..=30).contains(&p.input.rows()) && (1..=30).contains(&p.input.cols()));
            }
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz/task.json"),
                "error does not name the file: {msg}"
            );
            Err(msg)
        }
    }
}

fn corpus() -> Vec<PathBuf> {
    hrm_testkit::corpus_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/arc"))
}

#[test]
fn seed_corpus_is_refused_without_panics() {
    let files = corpus();
    assert!(files.len() >= 20, "the corpus holds {} files", files.len());
    for path in files {
        let r = load_task(&path);
        assert!(r.is_err(), "{} was accepted", path.display());
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
}

#[test]
fn the_valid_task_parses() {
    parse(VALID).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_valid_tasks_never_panic(edits in proptest::collection::vec(edit(&JSON_FRAGMENTS), 1..6)) {
        let mut bytes = VALID.as_bytes().to_vec();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_grids_parse_or_fail_cleanly(
        rows in proptest::collection::vec(proptest::collection::vec(-3i64..14, 0..33), 0..33)
    ) {
        let text = format!(r#"{{"train": [{{"input": {}, "output": [[1]]}}], "test": []}}"#,
            serde_json::to_string(&rows).unwrap());
        let ok = !rows.is_empty()
            && rows.len() <= 30
            && !rows[0].is_empty()
            && rows[0].len() <= 30
            && rows.iter().all(|r| r.len() == rows[0].len() && r.iter().all(|c| (0..10).contains(c)));
        prop_assert_eq!(parse(&text).is_ok(), ok);
    }
}
