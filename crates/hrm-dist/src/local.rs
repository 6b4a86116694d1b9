//! The in-process backend: the ranks are threads of one process and the links are channels. Tests use it to
//! run several ranks of a training step side by side; nothing else does.

use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use crate::wire::{HostCollective, Link, Op, Star};

/// One end of a channel pair.
#[derive(Debug)]
struct ChannelLink {
    peer: usize,
    tx: Sender<(Op, Vec<u8>)>,
    rx: Receiver<(Op, Vec<u8>)>,
    timeout: Duration,
}

impl Link for ChannelLink {
    fn send(&mut self, op: Op, payload: &[u8]) -> Result<(), String> {
        self.tx
            .send((op, payload.to_vec()))
            .map_err(|_| format!("rank {} is gone (its thread ended)", self.peer))
    }

    fn recv(&mut self) -> Result<(Op, Vec<u8>), String> {
        self.rx.recv_timeout(self.timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => format!(
                "no word from rank {} within {:.0} s",
                self.peer,
                self.timeout.as_secs_f64()
            ),
            RecvTimeoutError::Disconnected => {
                format!("rank {} is gone (its thread ended)", self.peer)
            }
        })
    }
}

/// A world of `n` ranks in this process: element r is rank r's collective, to be moved into its thread.
pub fn world(n: usize, timeout: Duration) -> Vec<HostCollective> {
    let mut hub_links: Vec<Box<dyn Link>> = Vec::new();
    let mut others = Vec::new();
    for r in 1..n {
        let (to_hub, from_r) = unbounded();
        let (to_r, from_hub) = unbounded();
        hub_links.push(Box::new(ChannelLink {
            peer: r,
            tx: to_r,
            rx: from_r,
            timeout,
        }));
        others.push(HostCollective {
            star: Star {
                rank: r,
                world: n,
                links: vec![Box::new(ChannelLink {
                    peer: 0,
                    tx: to_hub,
                    rx: from_hub,
                    timeout,
                })],
            },
            name: "local",
        });
    }
    let mut all = vec![HostCollective {
        star: Star {
            rank: 0,
            world: n,
            links: hub_links,
        },
        name: "local",
    }];
    all.extend(others);
    all
}
