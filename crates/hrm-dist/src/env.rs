//! The world a process belongs to, read from the launcher's variables: torchrun's (`RANK`, `LOCAL_RANK`,
//! `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`), else Slurm's (`SLURM_PROCID`, `SLURM_LOCALID`, `SLURM_NTASKS`,
//! with `MASTER_ADDR` and `MASTER_PORT` set by the job script), plus the backend and the timeouts.

use std::time::Duration;

use crate::DistError;

/// Where this process sits in a multi-process run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldEnv {
    /// Global rank, 0-based.
    pub rank: usize,
    /// Rank on this node: the CUDA device index a rank uses.
    pub local_rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Host of rank 0's rendezvous listener.
    pub master_addr: String,
    /// Its port.
    pub master_port: u16,
}

/// The collective backend of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// NCCL for CUDA tensors (the default on CUDA).
    Nccl,
    /// Tensors through host memory over TCP (the default on CPU).
    Tcp,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nccl" => Ok(Backend::Nccl),
            "tcp" => Ok(Backend::Tcp),
            other => Err(format!("unknown backend `{other}` (expected nccl or tcp)")),
        }
    }
}

/// How long a rank waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For all ranks to join (`HRM_DIST_TIMEOUT_S`, default 120 s).
    pub rendezvous: Duration,
    /// For one collective's peers (`HRM_DIST_OP_TIMEOUT_S`, default 1800 s, as long as an evaluation or a
    /// checkpoint written by rank 0 may take).
    pub collective: Duration,
}

impl Timeouts {
    /// The timeouts from `HRM_DIST_TIMEOUT_S` and `HRM_DIST_OP_TIMEOUT_S` (seconds, may be fractional).
    pub fn from_env() -> Result<Timeouts, DistError> {
        Timeouts::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`Timeouts::from_env`], with the variables looked up by `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Timeouts, DistError> {
        let d = crate::default_timeouts();
        let secs = |var: &str, default: Duration| -> Result<Duration, DistError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| DistError::Env {
                        var: var.into(),
                        message: format!("`{v}` is not a positive number of seconds"),
                    }),
            }
        };
        Ok(Timeouts {
            rendezvous: secs("HRM_DIST_TIMEOUT_S", d.rendezvous)?,
            collective: secs("HRM_DIST_OP_TIMEOUT_S", d.collective)?,
        })
    }
}

impl WorldEnv {
    /// The world of this process: `None` when no launcher says there is one (`WORLD_SIZE` unset, and no Slurm
    /// job of several tasks), an error naming the variable when one is malformed or missing. `WORLD_SIZE=1`
    /// (`torchrun --nproc-per-node 1`) is a world of one rank, which runs the distributed code path as the
    /// reference does under torchrun.
    pub fn from_env() -> Result<Option<WorldEnv>, DistError> {
        WorldEnv::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`WorldEnv::from_env`], with the variables looked up by `get`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<WorldEnv>, DistError> {
        let (rank_var, local_var, world_var) = if get("WORLD_SIZE").is_some() {
            ("RANK", "LOCAL_RANK", "WORLD_SIZE")
        } else if get("SLURM_PROCID").is_some()
            && get("SLURM_NTASKS").is_some_and(|n| n.trim() != "1")
        {
            ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS")
        } else {
            return Ok(None);
        };
        let number = |var: &str| -> Result<usize, DistError> {
            let v = get(var).ok_or_else(|| DistError::Env {
                var: var.into(),
                message: format!("not set, but {world_var} is"),
            })?;
            v.trim().parse::<usize>().map_err(|_| DistError::Env {
                var: var.into(),
                message: format!("`{v}` is not a non-negative integer"),
            })
        };
        let world_size = number(world_var)?;
        if world_size == 0 {
            return Err(DistError::Env {
                var: world_var.into(),
                message: "must be at least 1".into(),
            });
        }
        let rank = number(rank_var)?;
        if rank >= world_size {
            return Err(DistError::Env {
                var: rank_var.into(),
                message: format!("{rank} is not below {world_var} = {world_size}"),
            });
        }
        let local_rank = match get(local_var) {
            Some(_) => number(local_var)?,
            None => rank,
        };
        let master_addr = get("MASTER_ADDR").ok_or_else(|| DistError::Env {
            var: "MASTER_ADDR".into(),
            message: format!(
                "not set: every rank needs the host of rank 0 ({world_var} = {world_size})"
            ),
        })?;
        let port = get("MASTER_PORT").ok_or_else(|| DistError::Env {
            var: "MASTER_PORT".into(),
            message: format!(
                "not set: every rank needs rank 0's port ({world_var} = {world_size})"
            ),
        })?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| DistError::Env {
                var: "MASTER_PORT".into(),
                message: format!("`{port}` is not a port number (1 to 65535)"),
            })?;
        Ok(Some(WorldEnv {
            rank,
            local_rank,
            world_size,
            master_addr,
            master_port,
        }))
    }

    /// `MASTER_ADDR:MASTER_PORT`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.master_addr, self.master_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn torchrun_variables() {
        let w = WorldEnv::from_lookup(lookup(&[
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("WORLD_SIZE", "4"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((w.rank, w.local_rank, w.world_size), (3, 1, 4));
        assert_eq!(w.address(), "node0:29500");
    }

    #[test]
    fn slurm_variables_and_single_process() {
        let w = WorldEnv::from_lookup(lookup(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_NTASKS", "8"),
            ("MASTER_ADDR", "n1"),
            ("MASTER_PORT", "1234"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((w.rank, w.local_rank, w.world_size), (5, 1, 8));
        assert_eq!(WorldEnv::from_lookup(lookup(&[])).unwrap(), None);
        assert_eq!(
            WorldEnv::from_lookup(lookup(&[("SLURM_NTASKS", "1"), ("SLURM_PROCID", "0")])).unwrap(),
            None
        );
        let one = WorldEnv::from_lookup(lookup(&[
            ("WORLD_SIZE", "1"),
            ("RANK", "0"),
            ("MASTER_ADDR", "localhost"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(one.world_size, 1);
    }

    #[test]
    fn bad_variables_are_named() {
        let e = WorldEnv::from_lookup(lookup(&[("WORLD_SIZE", "2"), ("RANK", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("MASTER_ADDR"), "{e}");
        let e = WorldEnv::from_lookup(lookup(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "2"),
            ("MASTER_ADDR", "x"),
            ("MASTER_PORT", "1"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("RANK") && e.contains("not below"), "{e}");
        let e = WorldEnv::from_lookup(lookup(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "1"),
            ("MASTER_ADDR", "x"),
            ("MASTER_PORT", "http"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("MASTER_PORT"), "{e}");
        let e = Timeouts::from_lookup(lookup(&[("HRM_DIST_TIMEOUT_S", "-1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HRM_DIST_TIMEOUT_S"), "{e}");
    }
}
