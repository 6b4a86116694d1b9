//! Fuzzing the ARC Prize challenges readers ([`read_task_file`], which tells a challenges file from a task file
//! by what it holds, and [`read_combined`] with a solutions file) with mutated valid files and arbitrary bytes:
//! nothing may panic; a refusal names the file it read. Bounded (128 cases per property) so the set runs in a
//! few seconds under `cargo test`.

use hrm_data::sources::{read_combined, read_task_file, ArcTaskFile};
use hrm_testkit::mutate::{edit, mutated, Edit, JSON_FRAGMENTS};
use proptest::prelude::*;
use std::path::Path;

const CHALLENGES: &str = r#"{"aaaa0001": {"train": [{"input": [[1, 2]], "output": [[2, 1]]}],
  "test": [{"input": [[3, 4]]}]},
 "aaaa0002": {"train": [{"input": [[0]], "output": [[5]]}, {"input": [[5]], "output": [[0]]}],
  "test": [{"input": [[0]]}, {"input": [[5, 5]]}]}}"#;
const SOLUTIONS: &str = r#"{"aaaa0001": [[[4, 3]]], "aaaa0002": [[[5]], [[0, 0]]]}"#;

/// Reads `challenges` (and `solutions` beside it when given) as a file named `name`: both readers, no panic,
/// every error naming one of the two files.
fn read(name: &str, challenges: &[u8], solutions: Option<&[u8]>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, challenges).unwrap();
    let sol = dir.path().join("x_solutions.json");
    if let Some(s) = solutions {
        std::fs::write(&sol, s).unwrap();
    }
    let names_a_file = |msg: &str| {
        msg.contains(&path.display().to_string()) || msg.contains(&sol.display().to_string())
    };
    let file = ArcTaskFile {
        path: path.clone(),
        evaluation: true,
    };
    if let Err(e) = read_task_file(&file) {
        let msg = e.to_string();
        assert!(names_a_file(&msg), "the error names no file: {msg}");
    }
    match read_combined(&path, solutions.map(|_| sol.as_path())) {
        Ok(entries) => {
            for (_, task) in entries {
                if let Err(e) = task {
                    let msg = e.to_string();
                    assert!(names_a_file(&msg), "the error names no file: {msg}");
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(names_a_file(&msg), "the error names no file: {msg}");
        }
    }
}

#[test]
fn the_valid_files_read_with_their_solutions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("any-name.json");
    std::fs::write(&path, CHALLENGES).unwrap();
    let sol = dir.path().join("s.json");
    std::fs::write(&sol, SOLUTIONS).unwrap();
    let entries = read_combined(&path, Some(Path::new(&sol))).unwrap();
    assert_eq!(entries.len(), 2);
    let task = entries[1].1.as_ref().unwrap();
    assert_eq!(task.test.len(), 2);
    assert!(task.test.iter().all(|p| p.output.is_some()));
    let file = ArcTaskFile {
        path,
        evaluation: true,
    };
    assert_eq!(
        read_task_file(&file).unwrap().len(),
        2,
        "recognised by its content"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read("x_challenges.json", &bytes, None);
        read("tasks.json", &bytes, Some(SOLUTIONS.as_bytes()));
    }

    #[test]
    fn mutated_challenges_never_panic(edits in proptest::collection::vec(edit(&JSON_FRAGMENTS), 1..6)) {
        let bytes = mutated(CHALLENGES.as_bytes(), &edits);
        read("x_challenges.json", &bytes, Some(SOLUTIONS.as_bytes()));
        read("renamed.json", &bytes, None);
    }

    #[test]
    fn mutated_solutions_never_panic(edits in proptest::collection::vec(edit(&JSON_FRAGMENTS), 1..6)) {
        let edits: Vec<Edit> = edits;
        let bytes = mutated(SOLUTIONS.as_bytes(), &edits);
        read("x_challenges.json", CHALLENGES.as_bytes(), Some(&bytes));
    }
}
