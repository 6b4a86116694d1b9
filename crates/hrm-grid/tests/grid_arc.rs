//! Tests of `Grid` validation and of ARC task JSON loading and its error messages.

use std::path::Path;

use hrm_grid::arc::{load_task, parse_task, ArcError, Field, Section};
use hrm_grid::{Grid, GridError};
use proptest::prelude::*;

#[test]
fn grid_new_checks_shape_count_and_colours() {
    let g = Grid::new(2, 3, vec![0, 1, 2, 3, 4, 9]).unwrap();
    assert_eq!((g.rows(), g.cols(), g.get(1, 2)), (2, 3, 9));
    assert_eq!(g.to_rows(), vec![vec![0, 1, 2], vec![3, 4, 9]]);
    assert!(matches!(
        Grid::new(0, 3, vec![]),
        Err(GridError::BadShape { rows: 0, cols: 3 })
    ));
    assert!(matches!(
        Grid::new(31, 1, vec![0; 31]),
        Err(GridError::BadShape { .. })
    ));
    assert!(matches!(
        Grid::new(1, 31, vec![0; 31]),
        Err(GridError::BadShape { .. })
    ));
    assert!(Grid::new(30, 30, vec![5; 900]).is_ok());
    assert!(matches!(
        Grid::new(2, 2, vec![0; 3]),
        Err(GridError::CellCount { len: 3, .. })
    ));
    let err = Grid::new(2, 2, vec![0, 0, 0, 10]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "row 1, col 1 holds 10, expected a colour 0..=9"
    );
}

#[test]
fn grid_from_rows_rejects_ragged_empty_and_big() {
    let err = Grid::from_rows(&[
        vec![1, 2, 3, 4, 5],
        vec![1, 2, 3, 4, 5],
        vec![0; 5],
        vec![1; 4],
    ])
    .unwrap_err();
    assert_eq!(err.to_string(), "row 3 has 4 cells, expected 5");
    assert_eq!(Grid::from_rows(&[]), Err(GridError::NoRows));
    assert_eq!(
        Grid::from_rows(&[vec![], vec![]]),
        Err(GridError::EmptyRow { row: 0 })
    );
    assert!(matches!(
        Grid::from_rows(&vec![vec![0u8; 3]; 31]),
        Err(GridError::BadShape { rows: 31, cols: 3 })
    ));
}

fn grid_strategy() -> impl Strategy<Value = Grid> {
    (1usize..=30, 1usize..=30).prop_flat_map(|(h, w)| {
        proptest::collection::vec(0u8..=9, h * w).prop_map(move |c| Grid::new(h, w, c).unwrap())
    })
}

proptest! {
    #[test]
    fn grid_rows_and_serde_round_trip(g in grid_strategy()) {
        prop_assert_eq!(&Grid::from_rows(&g.to_rows()).unwrap(), &g);
        let json = serde_json::to_string(&g).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Grid>(&json).unwrap(), &g);
        prop_assert_eq!(&Grid::from_array2(&g.to_array2()).unwrap(), &g);
    }
}

#[test]
fn grid_deserialisation_validates() {
    assert!(serde_json::from_str::<Grid>("[[1,2],[3]]").is_err());
    assert!(serde_json::from_str::<Grid>("[[1,12]]").is_err());
    assert!(serde_json::from_str::<Grid>("[]").is_err());
}

const GOOD: &str = r#"{
  "train": [{"input": [[0,1],[2,3]], "output": [[4]]},
            {"input": [[5]], "output": [[6,7,8]]}],
  "test": [{"input": [[9,9]], "output": [[1]]}, {"input": [[0]]}]
}"#;

fn path() -> &'static Path {
    Path::new("data/training/abc123.json")
}

#[test]
fn parses_a_good_task_and_allows_a_hidden_test_output() {
    let task = parse_task("abc123", GOOD, path()).unwrap();
    assert_eq!(task.id, "abc123");
    assert_eq!(task.train.len(), 2);
    assert_eq!(task.train[0].input.to_rows(), vec![vec![0, 1], vec![2, 3]]);
    assert_eq!(
        task.train[1].output.as_ref().unwrap().to_rows(),
        vec![vec![6, 7, 8]]
    );
    assert_eq!(task.test.len(), 2);
    assert_eq!(
        task.test[0].output.as_ref().unwrap().to_rows(),
        vec![vec![1]]
    );
    assert_eq!(task.test[1].output, None);
}

#[test]
fn name_key_overrides_the_file_stem() {
    let json = r#"{"name": "real_name", "train": [], "test": []}"#;
    assert_eq!(parse_task("stem", json, path()).unwrap().id, "real_name");
}

#[test]
fn load_task_reads_a_file_and_uses_its_stem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("007bbfd7.json");
    std::fs::write(&file, GOOD).unwrap();
    let task = load_task(&file).unwrap();
    assert_eq!(task.id, "007bbfd7");
    assert_eq!(task, parse_task("007bbfd7", GOOD, &file).unwrap());
    let missing = dir.path().join("missing.json");
    let err = load_task(&missing).unwrap_err();
    assert!(matches!(err, ArcError::Io { .. }));
    assert!(err.to_string().contains("missing.json"), "{err}");
}

/// Parses `json` as task "t1" at `path()` and returns the error message.
fn error_of(json: &str) -> (ArcError, String) {
    let err = parse_task("t1", json, path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("data/training/abc123.json"),
        "no file in: {msg}"
    );
    assert!(msg.contains("t1"), "no task id in: {msg}");
    (err, msg)
}

#[test]
fn ragged_rows_name_section_pair_field_and_row() {
    let json = r#"{"train": [{"input": [[1]], "output": [[1]]},
        {"input": [[1,2,3,4,5],[1,2,3,4,5],[0,0,0,0,0],[1,1,1,1]], "output": [[1]]}], "test": []}"#;
    let (err, msg) = error_of(json);
    assert!(matches!(
        err,
        ArcError::Grid {
            section: Section::Train,
            pair: 1,
            field: Field::Input,
            source: GridError::Ragged {
                row: 3,
                len: 4,
                expected: 5
            },
            ..
        }
    ));
    assert!(
        msg.contains("train pair 1, field \"input\": row 3 has 4 cells, expected 5"),
        "{msg}"
    );
}

#[test]
fn oversized_empty_and_bad_colour_grids_are_rejected() {
    let big = format!("[{}]", vec!["[0]"; 31].join(","));
    let json = format!(r#"{{"train": [], "test": [{{"input": [[0]], "output": {big}}}]}}"#);
    let (err, msg) = error_of(&json);
    assert!(matches!(
        err,
        ArcError::Grid {
            section: Section::Test,
            pair: 0,
            field: Field::Output,
            source: GridError::BadShape { rows: 31, .. },
            ..
        }
    ));
    assert!(msg.contains("test pair 0, field \"output\""), "{msg}");

    let wide = format!("[[{}]]", vec!["1"; 31].join(","));
    let json = format!(r#"{{"train": [{{"input": {wide}, "output": [[0]]}}], "test": []}}"#);
    assert!(matches!(
        error_of(&json).0,
        ArcError::Grid {
            source: GridError::BadShape { rows: 1, cols: 31 },
            ..
        }
    ));

    let (err, _) = error_of(r#"{"train": [{"input": [], "output": [[0]]}], "test": []}"#);
    assert!(matches!(
        err,
        ArcError::Grid {
            source: GridError::NoRows,
            ..
        }
    ));

    for bad in ["10", "-1", "1.5", "\"3\"", "null"] {
        let json =
            format!(r#"{{"train": [{{"input": [[0, {bad}]], "output": [[0]]}}], "test": []}}"#);
        let (err, msg) = error_of(&json);
        assert!(
            matches!(
                err,
                ArcError::Grid {
                    source: GridError::BadColour { row: 0, col: 1, .. },
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("row 0, col 1 holds"), "{msg}");
    }
}

#[test]
fn a_null_grid_is_named_as_null_and_only_a_test_output_may_be_null() {
    let (err, msg) = error_of(r#"{"train": [{"input": null, "output": [[0]]}], "test": []}"#);
    assert!(matches!(
        err,
        ArcError::NotAGrid {
            section: Section::Train,
            pair: 0,
            field: Field::Input,
            ..
        }
    ));
    assert!(
        msg.contains("train pair 0, field \"input\": null; it must be a grid"),
        "{msg}"
    );
    let (_, msg) = error_of(r#"{"train": [{"input": [[0]], "output": null}], "test": []}"#);
    assert!(msg.contains("field \"output\": null"), "{msg}");
    let (_, msg) = error_of(r#"{"train": [], "test": [{"input": null}]}"#);
    assert!(msg.contains("test pair 0, field \"input\": null"), "{msg}");
    let task = parse_task(
        "t",
        r#"{"train": [], "test": [{"input": [[1]], "output": null}]}"#,
        Path::new("t.json"),
    )
    .expect("a test output may be null");
    assert!(task.test[0].output.is_none());
}

#[test]
fn missing_fields_and_sections_are_named() {
    let (err, msg) = error_of(r#"{"train": [{"output": [[0]]}], "test": []}"#);
    assert!(matches!(
        err,
        ArcError::MissingField {
            section: Section::Train,
            pair: 0,
            field: Field::Input,
            ..
        }
    ));
    assert!(
        msg.contains("train pair 0: missing field \"input\""),
        "{msg}"
    );

    let (err, msg) =
        error_of(r#"{"train": [{"input": [[0]], "output": [[0]]}, {"input": [[0]]}], "test": []}"#);
    assert!(matches!(
        err,
        ArcError::MissingField {
            section: Section::Train,
            pair: 1,
            field: Field::Output,
            ..
        }
    ));
    assert!(msg.contains("missing field \"output\""), "{msg}");

    let (err, msg) = error_of(r#"{"train": []}"#);
    assert!(matches!(err, ArcError::Structure { .. }));
    assert!(msg.contains("missing section \"test\""), "{msg}");

    let (err, _) = error_of(r#"{"train": {}, "test": []}"#);
    assert!(matches!(err, ArcError::Structure { .. }));
    let (err, _) = error_of(r#"[1, 2]"#);
    assert!(matches!(err, ArcError::Structure { .. }));
    let (err, _) = error_of(r#"{"train": [], "test": [7]}"#);
    assert!(matches!(
        err,
        ArcError::PairNotObject {
            section: Section::Test,
            pair: 0,
            ..
        }
    ));
    let (err, msg) = error_of(r#"{"train": [], "test": [{"input": [1, 2]}]}"#);
    assert!(matches!(
        err,
        ArcError::NotAGrid {
            section: Section::Test,
            pair: 0,
            field: Field::Input,
            ..
        }
    ));
    assert!(msg.contains("row 0 is not a list"), "{msg}");
    let (err, _) = error_of(r#"{"name": 5, "train": [], "test": []}"#);
    assert!(matches!(err, ArcError::Structure { .. }));
}

#[test]
fn invalid_json_is_reported_with_file_and_task() {
    let (err, msg) = error_of(r#"{"train": [ "#);
    assert!(matches!(err, ArcError::Json { .. }));
    assert!(msg.contains("invalid JSON"), "{msg}");
}

proptest! {
    #[test]
    fn serialised_tasks_parse_back(
        train in proptest::collection::vec((grid_strategy(), grid_strategy()), 0..4),
        test in proptest::collection::vec((grid_strategy(), proptest::option::of(grid_strategy())), 0..3),
    ) {
        let pair = |i: &Grid, o: Option<&Grid>| {
            let mut m = serde_json::Map::new();
            m.insert("input".into(), serde_json::to_value(i).unwrap());
            if let Some(o) = o {
                m.insert("output".into(), serde_json::to_value(o).unwrap());
            }
            serde_json::Value::Object(m)
        };
        let json = serde_json::json!({
            "train": train.iter().map(|(i, o)| pair(i, Some(o))).collect::<Vec<_>>(),
            "test": test.iter().map(|(i, o)| pair(i, o.as_ref())).collect::<Vec<_>>(),
        });
        let task = parse_task("x", &json.to_string(), path()).unwrap();
        prop_assert_eq!(task.train.len(), train.len());
        for (p, (i, o)) in task.train.iter().zip(&train) {
            prop_assert_eq!(&p.input, i);
            prop_assert_eq!(p.output.as_ref(), Some(o));
        }
        for (p, (i, o)) in task.test.iter().zip(&test) {
            prop_assert_eq!(&p.input, i);
            prop_assert_eq!(&p.output, o);
        }
    }
}

#[test]
fn a_byte_order_mark_before_the_json_is_accepted() {
    let with_bom = format!("\u{feff}{GOOD}");
    assert_eq!(
        parse_task("abc123", &with_bom, path()).unwrap(),
        parse_task("abc123", GOOD, path()).unwrap()
    );
}
