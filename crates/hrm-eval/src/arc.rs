//! ARC pass@K (spec 8.2): crop, de-augment, vote per test input by count with ties broken by
//! mean sigmoid(q_halt), and count a task only when all of its test inputs are solved (HRM), or
//! credit each test input separately and average per task (ARC Prize / TRM, trm-spec 5).
//! Follows the reference's `evaluate.py` and `arc_eval.ipynb`, and TRM's `evaluators/arc.py`.

use std::collections::HashMap;
use std::path::Path;

use hrm_grid::codec::{canvas_side, crop_arc_canvas};
use hrm_grid::Grid;
use serde::{Deserialize, Serialize};

use crate::accuracy::ratio;
use crate::dataset::{identifier_name, parse_variant, ArcTaskTruth, ArcTestPair};
use crate::error::EvalError;
use crate::predictions::{Predictions, PUZZLE_IDENTIFIERS_FILE};

/// The K values of TRM's evaluator (the HRM notebook's plus 5); the papers report pass@2.
pub const PASS_AT_K: [usize; 6] = [1, 2, 5, 10, 100, 1000];

/// A de-augmented answer: a grid, or the special "invalid" answer of an empty crop.
///
/// `Invalid` takes part in voting like any other answer (it can occupy a top-K place) but
/// never matches a ground-truth grid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    /// The predicted canvas did not crop to a grid.
    Invalid,
    /// A cropped, de-augmented grid.
    Grid(Grid),
}

/// The crop (spec 8.2 step 2) of a predicted canvas, de-augmented by `undo`.
///
/// # Shapes
/// `tokens`: `[side * side]` (900 for the paper's 30x30 canvas; smaller square canvases work too).
pub fn crop_answer(tokens: &[u8], undo: impl Fn(&Grid) -> Grid) -> Answer {
    let Some(side) = canvas_side(tokens.len()) else {
        return Answer::Invalid;
    };
    match crop_arc_canvas(tokens, side) {
        Some(grid) => Answer::Grid(undo(&grid)),
        None => Answer::Invalid,
    }
}

/// The logistic function, computed in f64.
pub fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

/// One distinct answer for a test input, with its votes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The answer grid (`None` for the invalid answer).
    pub grid: Option<Grid>,
    /// The number of variant rows that voted for it.
    pub votes: usize,
    /// The mean sigmoid(q_halt_logit) of those rows.
    pub mean_q_halt: f64,
    /// Whether it equals the ground truth (always false when the truth is unknown).
    pub correct: bool,
}

/// The vote tally of one test input of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcTestResult {
    /// The index of the test pair within its task.
    pub index: usize,
    /// The test input.
    pub input: Grid,
    /// The expected output; `None` when it is unknown (a prediction-only test input).
    pub truth: Option<Grid>,
    /// The number of rows that voted (variants whose de-augmented input is this test input).
    pub num_rows: usize,
    /// The 1-based rank of the truth in the vote order, or `None` when no row proposed it or
    /// the truth is unknown.
    pub rank: Option<usize>,
    /// The two best answers, best first.
    pub top: Vec<Attempt>,
    /// The first two answers in rank order that are grids (the invalid answer skipped): the
    /// attempts of a competition submission ([`crate::submission`]).
    #[serde(default)]
    pub attempts: Vec<Grid>,
    /// The vote counts of all distinct answers, in rank order.
    pub vote_counts: Vec<usize>,
}

/// The result of one ARC task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcTaskResult {
    /// The original task name.
    pub name: String,
    /// The largest rank over the test inputs; the task is solved at K iff `task_rank <= K`.
    /// `None` when some test input never had its truth proposed or has an unknown truth.
    pub task_rank: Option<usize>,
    /// False when some test output is unknown: the task is left out of the pass@K denominators.
    #[serde(default = "default_true")]
    pub scored: bool,
    /// The per-test-input results, in split order.
    pub tests: Vec<ArcTestResult>,
}

fn default_true() -> bool {
    true
}

impl ArcTaskResult {
    /// True when every test input has its truth among the top K answers.
    pub fn solved_at(&self, k: usize) -> bool {
        self.task_rank.is_some_and(|r| r <= k)
    }

    /// The fraction of the test inputs whose truth ranks within the top K (ARC Prize / TRM
    /// credit); 0 for a task without test inputs.
    pub fn fraction_solved_at(&self, k: usize) -> f64 {
        let right = self
            .tests
            .iter()
            .filter(|t| t.rank.is_some_and(|r| r <= k))
            .count();
        ratio(right as f64, self.tests.len())
    }
}

/// pass@K over the scored tasks, in both scorings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassAtK {
    /// K.
    pub k: usize,
    /// The number of tasks with all test inputs solved at K (HRM).
    pub solved: usize,
    /// `solved / (num_tasks - num_tasks_unscored)` (HRM: a task counts only when all of its test
    /// inputs are right); 0 when no task is scored.
    pub rate: f64,
    /// The mean over scored tasks of the fraction of their test inputs solved at K (ARC Prize /
    /// TRM: a task with two test inputs, one right, counts 0.5); 0 when no task is scored.
    #[serde(default)]
    pub prize: f64,
}

/// The ARC evaluation of spec 8.2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcReport {
    /// The number of tasks (un-augmented puzzles of the test split).
    pub num_tasks: usize,
    /// The number of tasks with an unknown test output, left out of pass@K: the denominator is
    /// `num_tasks - num_tasks_unscored`.
    #[serde(default)]
    pub num_tasks_unscored: usize,
    /// The number of tasks with at least one voting row.
    pub num_tasks_predicted: usize,
    /// The number of rows that voted.
    pub rows_voting: usize,
    /// Rows with puzzle id 0 (padding), skipped as in the reference.
    pub rows_blank: usize,
    /// Rows whose task is not in the test split or whose de-augmented input matches none of
    /// the task's test inputs; they do not vote.
    pub rows_unmatched: usize,
    /// Voting rows whose prediction did not crop to a grid (the "invalid" answer).
    pub rows_invalid_crop: usize,
    /// pass@K for each K of [`PASS_AT_K`].
    pub pass_at: Vec<PassAtK>,
    /// Per-task results, in split order.
    pub tasks: Vec<ArcTaskResult>,
}

impl ArcReport {
    /// The pass@K rate for `k` (HRM: all test inputs right), when it was computed.
    pub fn pass_at_k(&self, k: usize) -> Option<f64> {
        self.pass_at.iter().find(|p| p.k == k).map(|p| p.rate)
    }

    /// The pass@K score for `k` per test input (ARC Prize / TRM), when it was computed.
    pub fn prize_at_k(&self, k: usize) -> Option<f64> {
        self.pass_at.iter().find(|p| p.k == k).map(|p| p.prize)
    }

    /// The number of tasks pass@K is computed over: those whose test outputs are all known.
    pub fn num_tasks_scored(&self) -> usize {
        self.num_tasks.saturating_sub(self.num_tasks_unscored)
    }
}

/// Running tally of one test input: answers in first-seen order.
#[derive(Default)]
struct Tally {
    answers: Vec<(Answer, usize, f64)>,
    index: HashMap<Answer, usize>,
    rows: usize,
}

impl Tally {
    fn add(&mut self, answer: &Answer, q: f64) {
        self.rows += 1;
        match self.index.get(answer) {
            Some(&i) => {
                self.answers[i].1 += 1;
                self.answers[i].2 += q;
            }
            None => {
                self.index.insert(answer.clone(), self.answers.len());
                self.answers.push((answer.clone(), 1, q));
            }
        }
    }

    /// Answers sorted by (votes, mean q) descending; exact ties keep first-seen order.
    fn ranked(self) -> Vec<(Answer, usize, f64)> {
        let mut ranked: Vec<(Answer, usize, f64)> = self
            .answers
            .into_iter()
            .map(|(a, votes, q_sum)| (a, votes, q_sum / votes as f64))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)));
        ranked
    }
}

/// Scores ARC predictions against the ground truth of the test split (spec 8.2).
///
/// Each row's puzzle id is looked up in `identifiers` (id -> variant name); rows with id 0
/// are skipped. The row's input and prediction are cropped and de-augmented (inverse
/// dihedral, then inverse colour map). A row votes for every test input of its task that
/// equals its de-augmented input. Answers rank by votes, then by mean sigmoid(q_halt);
/// exact ties keep first-seen (row) order, like Python's stable sort in the reference
/// notebook. A task with an unknown test output is unscored: it still gets its ranked answers
/// (for a submission) but stays out of pass@K. `pred_dir` only names files in errors.
pub fn score_arc(
    predictions: &Predictions,
    identifiers: &[String],
    truth: &[ArcTaskTruth],
    ks: &[usize],
    pred_dir: &Path,
) -> Result<ArcReport, EvalError> {
    let mut ballot = Ballot::new(truth);
    let mut rows = RowCounts::default();
    let mut variants = HashMap::new();
    for i in 0..predictions.len() {
        let id = predictions.puzzle_identifiers[i];
        if id == 0 {
            rows.blank += 1;
            continue;
        }
        let name = identifier_name(identifiers, id).ok_or_else(|| {
            EvalError::invalid(
                pred_dir.join(PUZZLE_IDENTIFIERS_FILE),
                format!(
                    "row {i} has puzzle id {id}, outside the dataset's identifiers.json \
                     ({} names)",
                    identifiers.len()
                ),
            )
        })?;
        let (orig, variant) = variants
            .entry(id)
            .or_insert_with(|| parse_variant(name))
            .clone();
        let undo = |g: &Grid| match &variant {
            Some(v) => v.undo_grid(g),
            None => g.clone(),
        };
        let Some((t, tests)) =
            ballot.matching_tests(&orig, crop_answer(predictions.input(i), undo))
        else {
            rows.unmatched += 1;
            continue;
        };
        let answer = crop_answer(predictions.pred(i), undo);
        rows.voting += 1;
        rows.invalid_crop += usize::from(answer == Answer::Invalid);
        let q = sigmoid(predictions.q_halt_logits[i]);
        for j in tests {
            ballot.tallies[t][j].add(&answer, q);
        }
    }
    let num_tasks_predicted = ballot
        .tallies
        .iter()
        .filter(|task| task.iter().any(|t| t.rows > 0))
        .count();
    let tasks: Vec<ArcTaskResult> = truth
        .iter()
        .zip(ballot.tallies)
        .map(|(task, tallies)| task_result(task, tallies))
        .collect();
    Ok(ArcReport {
        num_tasks: truth.len(),
        num_tasks_unscored: tasks.iter().filter(|t| !t.scored).count(),
        num_tasks_predicted,
        rows_voting: rows.voting,
        rows_blank: rows.blank,
        rows_unmatched: rows.unmatched,
        rows_invalid_crop: rows.invalid_crop,
        pass_at: pass_at(&tasks, ks),
        tasks,
    })
}

/// How the prediction rows were used.
#[derive(Default)]
struct RowCounts {
    blank: usize,
    unmatched: usize,
    voting: usize,
    invalid_crop: usize,
}

/// The tallies of every test input of every task, and the task of each original name.
struct Ballot<'a> {
    truth: &'a [ArcTaskTruth],
    by_name: HashMap<&'a str, usize>,
    tallies: Vec<Vec<Tally>>,
}

impl<'a> Ballot<'a> {
    fn new(truth: &'a [ArcTaskTruth]) -> Self {
        Ballot {
            truth,
            by_name: truth
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.as_str(), i))
                .collect(),
            tallies: truth
                .iter()
                .map(|t| t.tests.iter().map(|_| Tally::default()).collect())
                .collect(),
        }
    }

    /// The task named `orig` and the indices of its test inputs equal to the de-augmented `input`;
    /// `None` when the task is unknown, the input did not crop, or it matches no test input.
    fn matching_tests(&self, orig: &str, input: Answer) -> Option<(usize, Vec<usize>)> {
        let &t = self.by_name.get(orig)?;
        let Answer::Grid(input) = input else {
            return None;
        };
        let tests: Vec<usize> = self.truth[t]
            .tests
            .iter()
            .enumerate()
            .filter(|(_, pair)| pair.input == input)
            .map(|(j, _)| j)
            .collect();
        (!tests.is_empty()).then_some((t, tests))
    }
}

/// The result of one task from the tallies of its test inputs.
fn task_result(task: &ArcTaskTruth, tallies: Vec<Tally>) -> ArcTaskResult {
    let tests: Vec<ArcTestResult> = task
        .tests
        .iter()
        .zip(tallies)
        .enumerate()
        .map(|(index, (pair, tally))| test_result(index, pair, tally))
        .collect();
    let task_rank = if tests.is_empty() {
        None
    } else {
        tests
            .iter()
            .map(|t| t.rank)
            .collect::<Option<Vec<usize>>>()
            .and_then(|r| r.into_iter().max())
    };
    ArcTaskResult {
        name: task.name.clone(),
        task_rank,
        scored: tests.iter().all(|t| t.truth.is_some()),
        tests,
    }
}

/// The ranked answers of one test input, with the rank of the truth and the two best attempts.
fn test_result(index: usize, pair: &ArcTestPair, tally: Tally) -> ArcTestResult {
    let num_rows = tally.rows;
    let ranked = tally.ranked();
    let is_truth = |a: &Answer| matches!(a, Answer::Grid(g) if pair.output.as_ref() == Some(g));
    let rank = ranked
        .iter()
        .position(|(a, _, _)| is_truth(a))
        .map(|p| p + 1);
    let top = ranked
        .iter()
        .take(2)
        .map(|(a, votes, q)| Attempt {
            grid: match a {
                Answer::Grid(g) => Some(g.clone()),
                Answer::Invalid => None,
            },
            votes: *votes,
            mean_q_halt: *q,
            correct: is_truth(a),
        })
        .collect();
    let attempts = ranked
        .iter()
        .filter_map(|(a, _, _)| match a {
            Answer::Grid(g) => Some(g.clone()),
            Answer::Invalid => None,
        })
        .take(2)
        .collect();
    ArcTestResult {
        index,
        input: pair.input.clone(),
        truth: pair.output.clone(),
        num_rows,
        rank,
        top,
        attempts,
        vote_counts: ranked.iter().map(|(_, v, _)| *v).collect(),
    }
}

/// pass@K over the scored tasks of `tasks` for each K of `ks`, in both scorings.
fn pass_at(tasks: &[ArcTaskResult], ks: &[usize]) -> Vec<PassAtK> {
    let scored: Vec<&ArcTaskResult> = tasks.iter().filter(|t| t.scored).collect();
    ks.iter()
        .map(|&k| {
            let solved = scored.iter().filter(|t| t.solved_at(k)).count();
            let credit: f64 = scored.iter().map(|t| t.fraction_solved_at(k)).sum();
            PassAtK {
                k,
                solved,
                rate: ratio(solved as f64, scored.len()),
                prize: ratio(credit, scored.len()),
            }
        })
        .collect()
}
