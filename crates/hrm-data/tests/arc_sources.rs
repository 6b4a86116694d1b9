//! ARC task sources: the ARC Prize combined format with and without solutions, folders and single files with
//! explicit roles, hidden test outputs kept as prediction-only rows, and task ids unique across sources.

mod common;

use hrm_data::arc::{build_arc, ArcBuildConfig, ArcSource, SourceRole};
use hrm_data::layout::{load_identifiers, load_split};
use hrm_data::sources::{list_arc_tasks, load_sources, read_combined};
use std::path::Path;

const CHALLENGES: &str = r#"{
 "zz01": {"train": [{"input": [[1, 2]], "output": [[2, 1]]}, {"input": [[3]], "output": [[3]]}],
          "test": [{"input": [[4, 5]]}, {"input": [[6]]}]},
 "aa02": {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[7, 7]]}]}
}"#;
const SOLUTIONS: &str = r#"{"aa02": [[[8, 8]]], "zz01": [[[5, 4]], [[6]]]}"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn config(sources: Vec<ArcSource>) -> ArcBuildConfig {
    ArcBuildConfig {
        sources,
        num_aug: 2,
        seed: 3,
        threads: 1,
        canvas: 30,
        evaluation_only: false,
        max_tasks: 0,
    }
}

/// The un-augmented test rows of the test split, cropped: (task, input, output or None for an all-PAD label).
type TestRow = (String, hrm_grid::Grid, Option<hrm_grid::Grid>);

fn test_rows(dir: &Path) -> Vec<TestRow> {
    let ids = load_identifiers(dir).unwrap();
    let test = load_split(dir, "test").unwrap();
    let mut out = Vec::new();
    for p in 0..test.num_puzzles() {
        let name = &ids[test.puzzle_identifiers[p] as usize];
        if name.contains("_t") {
            continue;
        }
        for r in test.puzzle_examples(p) {
            let input = hrm_grid::codec::crop_arc_canvas(test.input(r), 30).unwrap();
            let label = test.label(r);
            let output = if label.iter().all(|&t| t == 0) {
                None
            } else {
                Some(hrm_grid::codec::crop_arc_canvas(label, 30).unwrap())
            };
            out.push((name.clone(), input, output));
        }
    }
    out
}

fn grid(rows: &[&[u8]]) -> hrm_grid::Grid {
    hrm_grid::Grid::from_rows(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn combined_files_build_with_and_without_solutions() {
    let d = tempfile::tempdir().unwrap();
    let challenges = d.path().join("k/arc-agi_evaluation_challenges.json");
    write(&challenges, CHALLENGES);

    // Without a solutions file: the test outputs are hidden and become prediction-only rows (all-PAD labels).
    let out = d.path().join("hidden");
    let stats = build_arc(&config(vec![ArcSource::auto(&challenges)]), &out).unwrap();
    assert_eq!(stats.tasks, 2);
    assert_eq!(stats.hidden_test_outputs, 3, "3 test inputs");
    assert_eq!(stats.test.examples, 3 * 3, "3 test inputs x 3 variants");
    assert!(stats.to_string().contains("prediction-only"), "{stats}");
    let rows = test_rows(&out);
    // JSON order, not sorted order: zz01 comes first. The subset `evaluation` makes them test tasks.
    assert_eq!(
        rows,
        vec![
            ("zz01".to_string(), grid(&[&[4, 5]]), None),
            ("zz01".to_string(), grid(&[&[6]]), None),
            ("aa02".to_string(), grid(&[&[7, 7]]), None),
        ]
    );
    // Demonstrations train under the same ids.
    let train = load_split(&out, "train").unwrap();
    assert_eq!(train.num_groups(), 2);

    // With the solutions beside it: the outputs are the labels.
    write(
        &d.path().join("k/arc-agi_evaluation_solutions.json"),
        SOLUTIONS,
    );
    let out = d.path().join("solved");
    let stats = build_arc(&config(vec![ArcSource::auto(&challenges)]), &out).unwrap();
    assert_eq!(stats.hidden_test_outputs, 0);
    let outputs: Vec<Option<hrm_grid::Grid>> = test_rows(&out).into_iter().map(|r| r.2).collect();
    assert_eq!(
        outputs,
        vec![
            Some(grid(&[&[5, 4]])),
            Some(grid(&[&[6]])),
            Some(grid(&[&[8, 8]]))
        ]
    );

    // As a training source, every pair trains and there is no test split content.
    let out = d.path().join("training");
    let src = ArcSource::with_role(&challenges, SourceRole::Training);
    let stats = build_arc(&config(vec![src]), &out).unwrap();
    assert_eq!((stats.test.groups, stats.train.groups), (0, 2));
}

#[test]
fn bad_solutions_name_the_file_and_task() {
    let d = tempfile::tempdir().unwrap();
    let challenges = d.path().join("x_training_challenges.json");
    write(&challenges, CHALLENGES);
    let solutions = d.path().join("x_training_solutions.json");
    for (text, needle) in [
        (
            r#"{"aa02": [[[8, 8]]]}"#,
            "zz01: missing from the solutions",
        ),
        (
            r#"{"aa02": [[[8, 8]]], "zz01": [[[5, 4]]]}"#,
            "zz01: has 1 output grids for 2 test inputs",
        ),
        (
            r#"{"aa02": [[[8, 8]]], "zz01": [[[5, 4]], [[6]]], "new9": []}"#,
            "new9: has solutions but is not in",
        ),
        (
            r#"{"aa02": [[[8, 10]]], "zz01": [[[5, 4]], [[6]]]}"#,
            "aa02",
        ),
        (r#"{"aa02": "#, "invalid JSON"),
    ] {
        write(&solutions, text);
        let e = load_sources(&[ArcSource::auto(&challenges)])
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{e}");
        assert!(e.contains("x_training_"), "names the file: {e}");
    }
}

#[test]
fn folders_and_files_with_roles_and_unique_ids() {
    let d = tempfile::tempdir().unwrap();
    let task = r#"{"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]], "output": [[4]]}]}"#;
    write(&d.path().join("mine/a.json"), task);
    write(&d.path().join("mine/b.json"), task);
    write(&d.path().join("mine/notes.txt"), "not a task");
    write(&d.path().join("one/c.json"), task);
    // `test=` marks every task of the folder as a test task; a plain path follows the folder-name rule.
    let sources = [
        ArcSource::parse("test=mine", Some(d.path())),
        ArcSource::parse("one/c.json", Some(d.path())),
    ];
    assert_eq!(sources[0].role, Some(SourceRole::Test));
    assert_eq!(sources[1].role, None);
    let files = list_arc_tasks(&sources).unwrap();
    let listed: Vec<(String, bool)> = files
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.evaluation,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("a.json".into(), true),
            ("b.json".into(), true),
            ("c.json".into(), false)
        ]
    );
    let out = d.path().join("out");
    let stats = build_arc(&config(sources.to_vec()), &out).unwrap();
    assert_eq!(
        (stats.tasks, stats.test.groups, stats.train.groups),
        (3, 2, 3)
    );

    // The same task name in two sources is refused with both paths named; nothing is written.
    write(&d.path().join("two/a.json"), task);
    let dup = vec![
        ArcSource::with_role(d.path().join("mine"), SourceRole::Training),
        ArcSource::auto(d.path().join("two")),
    ];
    let e = build_arc(&config(dup), &d.path().join("dup"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("task a") && e.contains("mine/a.json") && e.contains("two/a.json"),
        "{e}"
    );
    assert!(!d.path().join("dup").exists());
}

#[test]
fn a_hidden_test_output_of_a_training_task_is_left_out() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("training/t.json"),
        r#"{"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}, {"input": [[4]], "output": [[5]]}]}"#,
    );
    let stats = build_arc(
        &config(vec![ArcSource::auto(d.path())]),
        &d.path().join("out"),
    )
    .unwrap();
    assert_eq!((stats.hidden_left_out, stats.hidden_test_outputs), (1, 0));
    // Two pairs train (the demonstration and the test pair with its output), per variant.
    let train = load_split(&d.path().join("out"), "train").unwrap();
    assert_eq!(train.puzzle_examples(0).len(), 2);
}

#[test]
fn the_kaggle_evaluation_file_holds_the_arc1_evaluation_folder() {
    let data = common::data_dir();
    let kaggle = data.join("arc-kaggle");
    let entries = read_combined(
        &kaggle.join("arc-agi_evaluation_challenges.json"),
        Some(&kaggle.join("arc-agi_evaluation_solutions.json")),
    )
    .unwrap();
    assert_eq!(entries.len(), 400);
    let mut test_inputs = 0;
    for (id, task) in entries {
        let task = task.unwrap();
        let folder =
            hrm_grid::arc::load_task(&data.join(format!("arc-agi-1/evaluation/{id}.json")))
                .unwrap();
        assert_eq!(task, folder, "task {id} differs from its folder copy");
        test_inputs += task.test.len();
    }
    assert_eq!(test_inputs, 419);
    // Without the solutions every test output is hidden.
    let hidden = read_combined(&kaggle.join("arc-agi_evaluation_challenges.json"), None).unwrap();
    assert!(hidden.iter().all(|(_, t)| t
        .as_ref()
        .unwrap()
        .test
        .iter()
        .all(|p| p.output.is_none())));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(192))]

    /// Combined files with a byte changed or cut off anywhere (challenges or solutions): reading never panics,
    /// and every error names the file it is about.
    #[test]
    fn mutated_combined_files_never_panic(
        in_solutions in proptest::bool::ANY,
        pos in 0usize..400,
        byte in proptest::num::u8::ANY,
        truncate in proptest::bool::ANY,
    ) {
        let d = tempfile::tempdir().unwrap();
        let challenges = d.path().join("f_test_challenges.json");
        let solutions = d.path().join("f_test_solutions.json");
        let mut texts = [CHALLENGES.as_bytes().to_vec(), SOLUTIONS.as_bytes().to_vec()];
        let t = &mut texts[usize::from(in_solutions)];
        let at = pos % t.len();
        if truncate {
            t.truncate(at);
        } else {
            t[at] = byte;
        }
        std::fs::write(&challenges, &texts[0]).unwrap();
        std::fs::write(&solutions, &texts[1]).unwrap();
        let names = |e: &str| e.contains("f_test_challenges.json") || e.contains("f_test_solutions.json");
        match read_combined(&challenges, Some(&solutions)) {
            Err(e) => proptest::prop_assert!(names(&e.to_string()), "{e}"),
            Ok(entries) => {
                for (_, task) in entries {
                    if let Err(e) = task {
                        proptest::prop_assert!(names(&e.to_string()), "{e}");
                    }
                }
            }
        }
    }
}
