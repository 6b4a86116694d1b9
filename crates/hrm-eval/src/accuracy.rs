//! Task-independent metrics: exact accuracy, token accuracy and q_halt accuracy (spec 6.3).
//! Follows the reference's `models/losses.py`.

use hrm_data::DATASET_IGNORE_LABEL;
use serde::{Deserialize, Serialize};

use crate::predictions::Predictions;

/// How one row compares with its label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowScore {
    /// The number of supervised positions (label != [`DATASET_IGNORE_LABEL`]).
    pub supervised: usize,
    /// The number of supervised positions predicted correctly.
    pub correct: usize,
}

impl RowScore {
    /// True when the row has supervised positions and all of them are correct.
    pub fn exact(&self) -> bool {
        self.supervised > 0 && self.correct == self.supervised
    }
}

/// Compares predicted tokens with labels over the supervised positions.
///
/// # Shapes
/// `pred`, `label`: `[S]`.
pub fn score_row(pred: &[u8], label: &[u8]) -> RowScore {
    let mut score = RowScore {
        supervised: 0,
        correct: 0,
    };
    for (&p, &l) in pred.iter().zip(label) {
        if l != DATASET_IGNORE_LABEL {
            score.supervised += 1;
            score.correct += usize::from(p == l);
        }
    }
    score
}

/// The metrics of spec 6.3 over the final segment, as `evaluate.py` reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    /// The number of rows.
    pub rows: usize,
    /// The number of rows with at least one supervised position (the denominator below).
    pub count: usize,
    /// The number of rows whose supervised positions are all correct.
    pub exact_count: usize,
    /// `exact_count / count` (0 when `count` is 0).
    pub exact_accuracy: f64,
    /// The mean over counted rows of (correct / supervised) (0 when `count` is 0).
    pub token_accuracy: f64,
    /// The fraction of counted rows where (q_halt_logit >= 0) equals exactness.
    pub q_halt_accuracy: f64,
}

/// `num / den`, or 0 when `den` is 0.
pub(crate) fn ratio(num: f64, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num / den as f64
    }
}

/// Exact, token and q_halt accuracy of a predictions folder; rows without labels are skipped.
pub fn accuracy(predictions: &Predictions) -> AccuracyReport {
    let mut count = 0;
    let mut exact_count = 0;
    let mut token_sum = 0.0;
    let mut q_right = 0;
    for i in 0..predictions.len() {
        let score = score_row(predictions.pred(i), predictions.label(i));
        if score.supervised == 0 {
            continue;
        }
        count += 1;
        exact_count += usize::from(score.exact());
        token_sum += score.correct as f64 / score.supervised as f64;
        q_right += usize::from((predictions.q_halt_logits[i] >= 0.0) == score.exact());
    }
    AccuracyReport {
        rows: predictions.len(),
        count,
        exact_count,
        exact_accuracy: ratio(exact_count as f64, count),
        token_accuracy: ratio(token_sum, count),
        q_halt_accuracy: ratio(q_right as f64, count),
    }
}
