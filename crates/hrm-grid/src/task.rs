//! The task families of both references (`dataset/build_{arc,sudoku,maze}_dataset.py`): one enum for recipes,
//! builders, the evaluator and `cargo xtask`, with the vocabulary size and sequence length of each family's data.
//! [`TaskFamily`] is the coarser view the evaluator needs (ARC-1 and ARC-2 share one metric and vocabulary); it is
//! derived from [`Task`], and every vocabulary size of the workspace is read from here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codec::ARC_VOCAB;

/// The Sudoku vocabulary size: PAD, then digits 0 (blank) to 9 as tokens 1..=10 (spec 1.5).
pub const SUDOKU_VOCAB: usize = 11;
/// The Sudoku sequence length (9 x 9 cells).
pub const SUDOKU_SEQ_LEN: usize = 81;
/// The Maze vocabulary size: PAD, wall, open, start, goal, path (spec 1.6).
pub const MAZE_VOCAB: usize = 6;
/// The Maze sequence length (30 x 30 cells).
pub const MAZE_SEQ_LEN: usize = 900;

/// A task family: which raw data a dataset is built from, and so its vocabulary and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// ARC-AGI-1 training + evaluation with ConceptARC.
    Arc1,
    /// ARC-AGI-2 training + evaluation.
    Arc2,
    /// Sudoku-Extreme-style 1k.
    Sudoku,
    /// Maze-30x30-Hard-1k.
    Maze,
}

/// A task name that is none of `arc1`, `arc2`, `sudoku`, `maze`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task `{0}` (expected arc1, arc2, sudoku or maze)")]
pub struct UnknownTask(pub String);

impl Task {
    /// Every task, in declaration order.
    pub const ALL: [Task; 4] = [Task::Arc1, Task::Arc2, Task::Sudoku, Task::Maze];

    /// The name used on the command line, in recipes and in folder names.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Arc1 => "arc1",
            Task::Arc2 => "arc2",
            Task::Sudoku => "sudoku",
            Task::Maze => "maze",
        }
    }

    /// Whether the task is an ARC task (scored by pass@K with voting over augmentations).
    pub fn is_arc(self) -> bool {
        matches!(self, Task::Arc1 | Task::Arc2)
    }

    /// The family the task belongs to (ARC-1 and ARC-2 are both [`TaskFamily::Arc`]).
    pub fn family(self) -> TaskFamily {
        match self {
            Task::Arc1 | Task::Arc2 => TaskFamily::Arc,
            Task::Sudoku => TaskFamily::Sudoku,
            Task::Maze => TaskFamily::Maze,
        }
    }

    /// The vocabulary size of the task's datasets.
    pub fn vocab_size(self) -> usize {
        self.family().vocab_size()
    }

    /// The sequence length of the task's datasets; ARC uses a square canvas of side `canvas` (30 in the papers).
    pub fn seq_len(self, canvas: usize) -> usize {
        match self {
            Task::Arc1 | Task::Arc2 => canvas * canvas,
            Task::Sudoku => SUDOKU_SEQ_LEN,
            Task::Maze => MAZE_SEQ_LEN,
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Task {
    type Err = UnknownTask;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Task::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTask(s.to_string()))
    }
}

/// A task family as the evaluator sees it: one vocabulary and one metric. Written as `"arc"`, `"sudoku"` or
/// `"maze"` (the `task` of a predictions folder's `meta.json` and of `eval.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskFamily {
    /// ARC-AGI-1 and ARC-AGI-2: pass@K with voting over augmentations.
    Arc,
    /// Sudoku: exact accuracy and validity.
    Sudoku,
    /// Maze: exact accuracy and shortest-path validity.
    Maze,
}

impl TaskFamily {
    /// Every family, in declaration order.
    pub const ALL: [TaskFamily; 3] = [TaskFamily::Arc, TaskFamily::Sudoku, TaskFamily::Maze];

    /// The lower-case name used in `meta.json` and `eval.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskFamily::Arc => "arc",
            TaskFamily::Sudoku => "sudoku",
            TaskFamily::Maze => "maze",
        }
    }

    /// The vocabulary size of the family's datasets: [`ARC_VOCAB`], [`SUDOKU_VOCAB`] or [`MAZE_VOCAB`].
    pub fn vocab_size(self) -> usize {
        match self {
            TaskFamily::Arc => ARC_VOCAB,
            TaskFamily::Sudoku => SUDOKU_VOCAB,
            TaskFamily::Maze => MAZE_VOCAB,
        }
    }

    /// The family whose datasets have `vocab_size` token ids, if any.
    pub fn from_vocab_size(vocab_size: usize) -> Option<TaskFamily> {
        TaskFamily::ALL
            .into_iter()
            .find(|f| f.vocab_size() == vocab_size)
    }
}

impl fmt::Display for TaskFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sizes_follow_the_codecs() {
        for t in Task::ALL {
            assert_eq!(t.as_str().parse::<Task>().unwrap(), t);
        }
        assert!("arc3"
            .parse::<Task>()
            .unwrap_err()
            .to_string()
            .contains("arc3"));
        assert_eq!(Task::Arc2.vocab_size(), 12);
        assert_eq!(Task::Sudoku.vocab_size(), 11);
        assert_eq!(Task::Maze.vocab_size(), 6);
        assert_eq!(Task::Arc1.seq_len(10), 100);
        assert_eq!(Task::Maze.seq_len(10), 900);
    }

    #[test]
    fn families_group_the_arc_tasks_and_invert_their_vocabularies() {
        assert_eq!(Task::Arc1.family(), TaskFamily::Arc);
        assert_eq!(Task::Arc2.family(), TaskFamily::Arc);
        assert_eq!(Task::Sudoku.family().as_str(), "sudoku");
        for f in TaskFamily::ALL {
            assert_eq!(TaskFamily::from_vocab_size(f.vocab_size()), Some(f));
        }
        assert_eq!(TaskFamily::from_vocab_size(7), None);
        assert_eq!(
            serde_json::to_string(&TaskFamily::Maze).unwrap(),
            "\"maze\""
        );
    }
}
