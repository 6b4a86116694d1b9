//! The ARC Prize (Kaggle) submission file `submission.json`: per task, two attempts per test input.
//! Follows TRM's `evaluators/arc.py` (its `submission.json`, trm-spec 5), except that a test input
//! without any grid answer gets a placeholder entry instead of none.
//!
//! The format: one JSON object, task id -> list (one entry per test input, in test order) of
//! `{"attempt_1": grid, "attempt_2": grid}`, a grid being a list of rows of colours 0..=9.

use std::collections::BTreeMap;
use std::path::Path;

use hrm_grid::Grid;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arc::ArcReport;
use crate::error::EvalError;

pub use crate::SUBMISSION_FILE;

/// The field of the first attempt.
const ATTEMPT_1: &str = "attempt_1";
/// The field of the second attempt.
const ATTEMPT_2: &str = "attempt_2";

/// One test input's two attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptPair {
    /// The first (best-ranked) attempt.
    pub attempt_1: Vec<Vec<u8>>,
    /// The second attempt.
    pub attempt_2: Vec<Vec<u8>>,
}

/// task id -> one AttemptPair per test input, in test order (BTreeMap so the file is sorted and stable).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Submission(pub BTreeMap<String, Vec<AttemptPair>>);

/// What building a submission had to make up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmissionStats {
    /// The number of tasks written.
    pub tasks: usize,
    /// The number of test inputs written (entries over all tasks).
    pub test_inputs: usize,
    /// Test inputs with a single grid answer, whose attempt_2 repeats attempt_1.
    pub padded: usize,
    /// Test inputs without any grid answer, whose attempts are both the placeholder `[[0]]`.
    pub placeholders: usize,
}

/// The attempt written for a test input without any grid answer.
fn placeholder() -> Vec<Vec<u8>> {
    vec![vec![0]]
}

/// A short name for the JSON kind of `v`, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Submission {
    /// From a scored ARC report: per test input the two best-ranked answers that are grids (the
    /// invalid answer is skipped); with one candidate, attempt_2 repeats attempt_1 (TRM pads this
    /// way); with none, both attempts are the placeholder `[[0]]` (the reference writes no entry;
    /// the competition would score that as wrong anyway) and it is counted.
    pub fn from_report(report: &ArcReport) -> (Submission, SubmissionStats) {
        let mut stats = SubmissionStats::default();
        let mut tasks = BTreeMap::new();
        for task in &report.tasks {
            let mut pairs = Vec::with_capacity(task.tests.len());
            for test in &task.tests {
                let pair = match test.attempts.as_slice() {
                    [] => {
                        stats.placeholders += 1;
                        AttemptPair {
                            attempt_1: placeholder(),
                            attempt_2: placeholder(),
                        }
                    }
                    [only] => {
                        stats.padded += 1;
                        AttemptPair {
                            attempt_1: only.to_rows(),
                            attempt_2: only.to_rows(),
                        }
                    }
                    [first, second, ..] => AttemptPair {
                        attempt_1: first.to_rows(),
                        attempt_2: second.to_rows(),
                    },
                };
                pairs.push(pair);
            }
            stats.test_inputs += pairs.len();
            tasks.insert(task.name.clone(), pairs);
        }
        stats.tasks = tasks.len();
        (Submission(tasks), stats)
    }

    /// The submission as compact JSON, like the competition's files.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("a map of string keys to lists of grids always serialises")
    }

    /// Writes [`Submission::to_json`] to `path` atomically (a temporary sibling renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        hrm_data::write_atomic(path, self.to_json().as_bytes())?;
        Ok(())
    }

    /// Reads a submission file in the competition format (written by [`Submission::write`] or by
    /// others). Errors name the file and, where it applies, the task, the test input and the field.
    /// Grids are read as lists of rows of bytes; [`Submission::validate`] checks their shape and colours.
    pub fn read(path: &Path) -> Result<Submission, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| EvalError::json(path, e.to_string()))?;
        let Value::Object(tasks) = value else {
            return Err(EvalError::json(
                path,
                format!(
                    "expected an object (task id -> list of {{\"{ATTEMPT_1}\", \"{ATTEMPT_2}\"}}), found {}",
                    kind(&value)
                ),
            ));
        };
        let mut out = BTreeMap::new();
        for (id, entries) in tasks {
            let Value::Array(entries) = entries else {
                return Err(EvalError::json(
                    path,
                    format!(
                        "task {id}: expected a list with one {{\"{ATTEMPT_1}\", \"{ATTEMPT_2}\"}} per test \
                         input, found {}",
                        kind(&entries)
                    ),
                ));
            };
            let mut pairs = Vec::with_capacity(entries.len());
            for (i, entry) in entries.into_iter().enumerate() {
                pairs.push(read_pair(path, &id, i, entry)?);
            }
            out.insert(id, pairs);
        }
        Ok(Submission(out))
    }

    /// Checks the competition format: every task of `expected` (task id, number of test inputs)
    /// present with exactly that many entries, no extra tasks, both attempts present, every grid
    /// rectangular with 1..=30 rows and columns and colours 0..=9. The error names the task, the
    /// test input index and the attempt.
    pub fn validate(&self, expected: &[(String, usize)]) -> Result<(), EvalError> {
        let fail = |msg: String| Err(EvalError::Submission { msg });
        for (id, n) in expected {
            let Some(pairs) = self.0.get(id) else {
                return fail(format!(
                    "task {id}: missing (expected {n} test input{})",
                    if *n == 1 { "" } else { "s" }
                ));
            };
            if pairs.len() != *n {
                return fail(format!(
                    "task {id}: {} entries, expected {n} (one per test input)",
                    pairs.len()
                ));
            }
        }
        if let Some(extra) = self
            .0
            .keys()
            .find(|id| !expected.iter().any(|(e, _)| e == *id))
        {
            return fail(format!(
                "task {extra}: not a task of the challenges ({} expected)",
                expected.len()
            ));
        }
        for (id, pairs) in &self.0 {
            for (i, pair) in pairs.iter().enumerate() {
                for (name, grid) in [(ATTEMPT_1, &pair.attempt_1), (ATTEMPT_2, &pair.attempt_2)] {
                    if let Err(e) = Grid::from_rows(grid) {
                        return fail(format!("task {id}, test input {i}, {name}: {e}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads entry `i` of task `id`: an object with exactly the fields `attempt_1` and `attempt_2`.
fn read_pair(path: &Path, id: &str, i: usize, entry: Value) -> Result<AttemptPair, EvalError> {
    let Value::Object(mut fields) = entry else {
        return Err(EvalError::json(
            path,
            format!(
                "task {id}, test input {i}: expected an object {{\"{ATTEMPT_1}\", \"{ATTEMPT_2}\"}}, found {}",
                kind(&entry)
            ),
        ));
    };
    if let Some(extra) = fields.keys().find(|k| *k != ATTEMPT_1 && *k != ATTEMPT_2) {
        return Err(EvalError::json(
            path,
            format!(
                "task {id}, test input {i}: unknown field `{extra}` (expected `{ATTEMPT_1}` and `{ATTEMPT_2}`)"
            ),
        ));
    }
    let mut take = |name: &str| -> Result<Vec<Vec<u8>>, EvalError> {
        let value = fields.remove(name).ok_or_else(|| {
            EvalError::json(
                path,
                format!("task {id}, test input {i}: missing field `{name}`"),
            )
        })?;
        serde_json::from_value(value).map_err(|e| {
            EvalError::json(
                path,
                format!(
                    "task {id}, test input {i}, field `{name}`: {e} (expected a grid: a list of rows \
                     of colours 0..=9)"
                ),
            )
        })
    };
    Ok(AttemptPair {
        attempt_1: take(ATTEMPT_1)?,
        attempt_2: take(ATTEMPT_2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arc::{ArcTaskResult, ArcTestResult};

    fn grid(rows: &[&[u8]]) -> Grid {
        Grid::from_rows(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap()
    }

    fn test_result(index: usize, attempts: Vec<Grid>) -> ArcTestResult {
        ArcTestResult {
            index,
            input: grid(&[&[1]]),
            truth: None,
            num_rows: attempts.len(),
            rank: None,
            top: Vec::new(),
            attempts,
            vote_counts: Vec::new(),
        }
    }

    fn report(tasks: Vec<(&str, Vec<Vec<Grid>>)>) -> ArcReport {
        let tasks: Vec<ArcTaskResult> = tasks
            .into_iter()
            .map(|(name, tests)| ArcTaskResult {
                name: name.to_string(),
                task_rank: None,
                scored: false,
                tests: tests
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| test_result(i, a))
                    .collect(),
            })
            .collect();
        ArcReport {
            num_tasks: tasks.len(),
            num_tasks_unscored: tasks.len(),
            num_tasks_predicted: 0,
            rows_voting: 0,
            rows_blank: 0,
            rows_unmatched: 0,
            rows_invalid_crop: 0,
            pass_at: Vec::new(),
            tasks,
        }
    }

    fn rows(g: &[&[u8]]) -> Vec<Vec<u8>> {
        g.iter().map(|r| r.to_vec()).collect()
    }

    fn pair(a: &[&[u8]], b: &[&[u8]]) -> AttemptPair {
        AttemptPair {
            attempt_1: rows(a),
            attempt_2: rows(b),
        }
    }

    /// Two tasks: "b" with two test inputs (two answers; one answer), "a" with one (no answer).
    fn sample() -> (Submission, SubmissionStats) {
        let r = report(vec![
            (
                "b",
                vec![
                    vec![grid(&[&[1, 2]]), grid(&[&[3], &[4]])],
                    vec![grid(&[&[5]])],
                ],
            ),
            ("a", vec![vec![]]),
        ]);
        Submission::from_report(&r)
    }

    #[test]
    fn from_report_pads_one_answer_and_fills_in_none() {
        let (s, stats) = sample();
        assert_eq!(
            stats,
            SubmissionStats {
                tasks: 2,
                test_inputs: 3,
                padded: 1,
                placeholders: 1
            }
        );
        assert_eq!(
            s.0["b"],
            vec![pair(&[&[1, 2]], &[&[3], &[4]]), pair(&[&[5]], &[&[5]])]
        );
        assert_eq!(s.0["a"], vec![pair(&[&[0]], &[&[0]])]);
        // Sorted by task id, compact, in the competition's shape.
        assert_eq!(
            s.to_json(),
            r#"{"a":[{"attempt_1":[[0]],"attempt_2":[[0]]}],"b":[{"attempt_1":[[1,2]],"attempt_2":[[3],[4]]},{"attempt_1":[[5]],"attempt_2":[[5]]}]}"#
        );
        s.validate(&[("a".into(), 1), ("b".into(), 2)]).unwrap();
    }

    #[test]
    fn validate_names_the_task_test_input_and_attempt() {
        let (good, _) = sample();
        let expected = vec![("a".to_string(), 1), ("b".to_string(), 2)];
        let err =
            |s: &Submission, exp: &[(String, usize)]| s.validate(exp).unwrap_err().to_string();

        let mut missing = expected.clone();
        missing.push(("c".into(), 1));
        let e = err(&good, &missing);
        assert!(e.contains("task c: missing"), "{e}");

        let e = err(&good, &[("a".into(), 1), ("b".into(), 3)]);
        assert!(e.contains("task b: 2 entries, expected 3"), "{e}");

        let e = err(&good, &expected[1..]);
        assert!(e.contains("task a: not a task"), "{e}");

        let bad = |attempt_2: Vec<Vec<u8>>| {
            let mut s = good.clone();
            s.0.get_mut("b").unwrap()[1].attempt_2 = attempt_2;
            err(&s, &expected)
        };
        let e = bad(vec![vec![1, 2], vec![3]]);
        assert!(
            e.contains("task b, test input 1, attempt_2") && e.contains("row 1 has 1 cells"),
            "{e}"
        );
        let e = bad(vec![vec![10]]);
        assert!(
            e.contains("task b, test input 1, attempt_2") && e.contains("holds 10"),
            "{e}"
        );
        let e = bad(vec![vec![0]; 31]);
        assert!(
            e.contains("task b, test input 1, attempt_2") && e.contains("31x1"),
            "{e}"
        );
        let e = bad(Vec::new());
        assert!(
            e.contains("task b, test input 1, attempt_2") && e.contains("empty"),
            "{e}"
        );
        let e = bad(vec![Vec::new()]);
        assert!(
            e.contains("task b, test input 1, attempt_2") && e.contains("empty"),
            "{e}"
        );
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("submission.json");
        let (s, _) = sample();
        s.write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), s.to_json());
        assert_eq!(Submission::read(&path).unwrap(), s);
    }

    #[test]
    fn read_accepts_competition_files_and_names_bad_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("theirs.json");
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Submission::read(&path)
        };
        // Whitespace and key order as another writer may leave them.
        let s = read(
            "{\n \"x1\": [ {\"attempt_2\": [[1, 1]], \"attempt_1\": [[0, 9]]} ],\n \"a0\": []\n}\n",
        )
        .unwrap();
        assert_eq!(s.0["x1"], vec![pair(&[&[0, 9]], &[&[1, 1]])]);
        assert!(s.0["a0"].is_empty());

        for (text, want) in [
            ("[1]", "expected an object"),
            (r#"{"t": {}}"#, "task t: expected a list"),
            (
                r#"{"t": [[1]]}"#,
                "task t, test input 0: expected an object",
            ),
            (
                r#"{"t": [{"attempt_1": [[1]]}]}"#,
                "task t, test input 0: missing field `attempt_2`",
            ),
            (
                r#"{"t": [{"attempt_1": [[1]], "attempt_2": [[1]], "attempt_3": [[1]]}]}"#,
                "unknown field `attempt_3`",
            ),
            (
                r#"{"t": [{"attempt_1": [[1]], "attempt_2": [[-1]]}]}"#,
                "task t, test input 0, field `attempt_2`",
            ),
            ("{\"t\": [", "EOF"),
        ] {
            let e = read(text).unwrap_err().to_string();
            assert!(e.contains("theirs.json") && e.contains(want), "{text}: {e}");
        }
        let e = Submission::read(&dir.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json"), "{e}");
    }
}
