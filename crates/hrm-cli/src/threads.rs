//! The libtorch CPU threads of the verbs that compute (`--threads`): the count given, the count a resumed run
//! started with, `OMP_NUM_THREADS`, or the cores other processes leave free when the command starts; fixed for
//! the whole command,
//! since the thread count changes the order of floating-point sums and so the numbers.
//!
//! Why not all cores: libtorch's OpenMP workers wait for each other at every parallel region, so when another
//! CPU-bound process holds a core, each region waits for a preempted worker. `hrm bench contention` measures it
//! (README "Speed on a shared CPU").

use std::time::Duration;

/// How long the other processes' CPU use is watched before choosing.
const SAMPLE: Duration = Duration::from_millis(250);

/// The thread count chosen and why, for the start line.
pub struct Choice {
    /// libtorch CPU threads.
    pub threads: usize,
    /// Why this many, e.g. `1 of 2 cores are free`.
    pub why: String,
}

/// The threads for `--threads flag` (0 = choose), `recorded` being a resumed run's count: the flag, else the
/// recorded count, else `OMP_NUM_THREADS`, else the cores other processes leave free (all where `/proc` cannot
/// tell).
pub fn choose(flag: usize, recorded: Option<usize>) -> Choice {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if flag > 0 {
        return Choice {
            threads: flag,
            why: "--threads".into(),
        };
    }
    if let Some(n) = recorded {
        return Choice {
            threads: n,
            why: "as the run started; --threads changes it, and the numbers then differ from an \
                  uninterrupted run in their last digits"
                .into(),
        };
    }
    let from_env = std::env::var("OMP_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    if let Some(n) = from_env {
        return Choice {
            threads: n,
            why: "OMP_NUM_THREADS".into(),
        };
    }
    match hrm_data::budget::free_cores(SAMPLE) {
        Some(free) if free < cores => Choice {
            threads: free,
            why: format!(
                "{free} of {cores} cores are free, the others busy with other work; --threads {cores} \
                 uses them all"
            ),
        },
        _ => Choice {
            threads: cores,
            why: "all cores".into(),
        },
    }
}

/// Chooses (see [`choose`]) and sets libtorch's CPU threads; returns the choice.
pub fn set(flag: usize, recorded: Option<usize>) -> Choice {
    let choice = choose(flag, recorded);
    tch::set_num_threads(choice.threads as i32);
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_count_wins_then_the_recorded_one_then_the_free_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        assert_eq!(choose(3, Some(1)).threads, 3);
        let resumed = choose(0, Some(1));
        assert_eq!(resumed.threads, 1);
        assert!(
            resumed.why.contains("as the run started"),
            "{}",
            resumed.why
        );
        let auto = choose(0, None);
        assert!((1..=cores).contains(&auto.threads), "{}", auto.threads);
    }
}
