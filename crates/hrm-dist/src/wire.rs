//! The host side of the collectives: a star of links around rank 0 that gathers every rank's bytes, combines
//! them at rank 0 and sends the result back, and [`HostCollective`], the tensor operations on top of it (the
//! TCP and in-process backends, and the NCCL backend's control channel).

use tch::{Device, Kind, Tensor};

use crate::{Collective, DistError};

/// A frame's first byte says what it is, so that ranks calling different collectives are told apart from a
/// peer sending garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    Hello = 1,
    Ready = 2,
    Error = 3,
    AllReduce = 10,
    AllGather = 11,
    Broadcast = 12,
    Max = 13,
    Bytes = 14,
}

impl Op {
    pub(crate) fn from_u8(b: u8) -> Option<Op> {
        Some(match b {
            1 => Op::Hello,
            2 => Op::Ready,
            3 => Op::Error,
            10 => Op::AllReduce,
            11 => Op::AllGather,
            12 => Op::Broadcast,
            13 => Op::Max,
            14 => Op::Bytes,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Hello => "hello",
            Op::Ready => "ready",
            Op::Error => "error",
            Op::AllReduce => "all_reduce",
            Op::AllGather => "all_gather",
            Op::Broadcast => "broadcast",
            Op::Max => "max",
            Op::Bytes => "broadcast_bytes",
        }
    }
}

/// One peer connection: whole frames, in order. `recv` fails (never blocks forever) when the peer is gone or
/// silent for longer than the collective timeout, with a sentence saying which.
pub(crate) trait Link: Send + std::fmt::Debug {
    fn send(&mut self, op: Op, payload: &[u8]) -> Result<(), String>;
    fn recv(&mut self) -> Result<(Op, Vec<u8>), String>;
}

/// Rank 0 holds a link to every other rank (index r - 1); every other rank holds one link, to rank 0.
#[derive(Debug)]
pub(crate) struct Star {
    pub(crate) rank: usize,
    pub(crate) world: usize,
    pub(crate) links: Vec<Box<dyn Link>>,
}

impl Star {
    /// Every rank contributes `mine`; rank 0 applies `combine` to all contributions in rank order and every rank
    /// receives the result. An error at rank 0 (a peer gone, a mismatch) reaches every rank that is still
    /// connected as an error frame.
    pub(crate) fn exchange(
        &mut self,
        op: Op,
        mine: Vec<u8>,
        combine: impl FnOnce(Vec<Vec<u8>>) -> Result<Vec<u8>, String>,
    ) -> Result<Vec<u8>, DistError> {
        let fail = |rank, message| DistError::Collective {
            op: op.name(),
            rank,
            message,
        };
        if self.rank != 0 {
            let link = &mut self.links[0];
            link.send(op, &mine).map_err(|m| fail(self.rank, m))?;
            return match link.recv().map_err(|m| fail(self.rank, m))? {
                (o, bytes) if o == op => Ok(bytes),
                (Op::Error, bytes) => Err(fail(
                    self.rank,
                    format!("rank 0 reports: {}", String::from_utf8_lossy(&bytes)),
                )),
                (o, _) => Err(fail(
                    self.rank,
                    format!("rank 0 answered `{}` (collectives out of step)", o.name()),
                )),
            };
        }
        let mut all = Vec::with_capacity(self.world);
        all.push(mine);
        let mut problem = None;
        for (i, link) in self.links.iter_mut().enumerate() {
            let peer = i + 1;
            match link.recv() {
                Ok((o, bytes)) if o == op => all.push(bytes),
                Ok((o, _)) => {
                    problem = Some(format!(
                        "rank {peer} called `{}` where rank 0 called `{}` (collectives out of step)",
                        o.name(),
                        op.name()
                    ));
                    break;
                }
                Err(m) => {
                    problem = Some(format!("rank {peer}: {m}"));
                    break;
                }
            }
        }
        let result = match problem {
            Some(p) => Err(p),
            None => combine(all),
        };
        match result {
            Ok(out) => {
                for (i, link) in self.links.iter_mut().enumerate() {
                    link.send(op, &out)
                        .map_err(|m| fail(0, format!("rank {}: {m}", i + 1)))?;
                }
                Ok(out)
            }
            Err(message) => {
                for link in self.links.iter_mut() {
                    let _ = link.send(Op::Error, message.as_bytes());
                }
                Err(fail(0, message))
            }
        }
    }
}

/// A tensor's bytes (host copy, row-major).
pub(crate) fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>, DistError> {
    let flat = t
        .f_to_device(Device::Cpu)
        .and_then(|t| t.f_contiguous())
        .and_then(|t| t.f_reshape([-1]))
        .and_then(|t| {
            if t.kind() == Kind::Uint8 {
                Ok(t)
            } else if t.kind() == Kind::Bool {
                t.f_to_kind(Kind::Uint8)
            } else {
                t.f_view_dtype(Kind::Uint8)
            }
        })
        .map_err(DistError::tch("copying a tensor to host memory"))?;
    Vec::<u8>::try_from(&flat).map_err(DistError::tch("reading a tensor's bytes"))
}

/// A tensor of `kind` and `shape` on `device` from its row-major bytes.
pub(crate) fn tensor_from_bytes(
    bytes: &[u8],
    kind: Kind,
    shape: &[i64],
    device: Device,
) -> Result<Tensor, DistError> {
    let raw = Tensor::from_slice(bytes);
    let t = match kind {
        Kind::Uint8 => Ok(raw),
        Kind::Bool => raw.f_to_kind(Kind::Bool),
        k => raw.f_view_dtype(k),
    };
    t.and_then(|t| t.f_reshape(shape))
        .and_then(|t| t.f_to_device(device))
        .map_err(DistError::tch("building a tensor from received bytes"))
}

/// The collectives through host memory, over a [`Star`].
#[derive(Debug)]
pub struct HostCollective {
    pub(crate) star: Star,
    pub(crate) name: &'static str,
}

/// Header of a tensor contribution: kind code and shape, so that rank 0 can refuse a mismatch by name.
fn header(t: &Tensor) -> Vec<u8> {
    let mut h = Vec::new();
    h.push(kind_code(t.kind()));
    let size = t.size();
    h.push(size.len() as u8);
    for d in size {
        h.extend_from_slice(&d.to_le_bytes());
    }
    h
}

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::Uint8 => 0,
        Kind::Int8 => 1,
        Kind::Int16 => 2,
        Kind::Int => 3,
        Kind::Int64 => 4,
        Kind::Half => 5,
        Kind::Float => 6,
        Kind::Double => 7,
        Kind::Bool => 11,
        Kind::BFloat16 => 15,
        _ => 255,
    }
}

fn split_header(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = *b.get(1)? as usize;
    let len = 2 + 8 * n;
    (b.len() >= len).then(|| b.split_at(len))
}

fn describe(h: &[u8]) -> String {
    let dims: Vec<i64> = h[2..]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    format!("kind code {} shape {:?}", h[0], dims)
}

/// Checks that every contribution has rank 0's header; returns the payloads.
fn same_headers(all: &[Vec<u8>]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::with_capacity(all.len());
    let first = split_header(&all[0]).ok_or("a malformed contribution")?.0;
    for (r, b) in all.iter().enumerate() {
        let (h, p) = split_header(b).ok_or_else(|| format!("rank {r} sent a malformed frame"))?;
        if h != first {
            return Err(format!(
                "rank {r} sent {} where rank 0 sent {}",
                describe(h),
                describe(first)
            ));
        }
        out.push(p);
    }
    Ok(out)
}

impl HostCollective {
    fn contribution(t: &Tensor) -> Result<Vec<u8>, DistError> {
        let mut b = header(t);
        b.extend(tensor_bytes(t)?);
        Ok(b)
    }

    fn write_back(t: &Tensor, bytes: &[u8]) -> Result<(), DistError> {
        let src = tensor_from_bytes(bytes, t.kind(), &t.size(), t.device())?;
        t.shallow_clone()
            .f_copy_(&src)
            .map_err(DistError::tch("writing a collective's result"))?;
        Ok(())
    }
}

impl Collective for HostCollective {
    fn rank(&self) -> usize {
        self.star.rank
    }

    fn world_size(&self) -> usize {
        self.star.world
    }

    fn backend(&self) -> &'static str {
        self.name
    }

    fn all_reduce_sum(&mut self, t: &Tensor) -> Result<(), DistError> {
        let kind = t.kind();
        if self.world_size() == 1 && crate::summable(kind) {
            return Ok(());
        }
        if !crate::summable(kind) {
            return Err(DistError::Collective {
                op: "all_reduce",
                rank: self.rank(),
                message: format!("cannot sum tensors of kind {kind:?}"),
            });
        }
        let size = t.size();
        let out = self
            .star
            .exchange(Op::AllReduce, Self::contribution(t)?, |all| {
                let parts = same_headers(&all)?;
                let mut acc = tensor_from_bytes(parts[0], kind, &size, Device::Cpu)
                    .map_err(|e| e.to_string())?;
                for p in &parts[1..] {
                    let x = tensor_from_bytes(p, kind, &size, Device::Cpu)
                        .map_err(|e| e.to_string())?;
                    acc = acc.f_add(&x).map_err(|e| e.to_string())?;
                }
                tensor_bytes(&acc).map_err(|e| e.to_string())
            })?;
        Self::write_back(t, &out)
    }

    fn all_gather(&mut self, t: &Tensor) -> Result<Tensor, DistError> {
        if self.world_size() == 1 {
            let one = if t.dim() == 0 {
                t.reshape([1])
            } else {
                t.shallow_clone()
            };
            return Ok(one.copy());
        }
        let out = self
            .star
            .exchange(Op::AllGather, Self::contribution(t)?, |all| {
                Ok(same_headers(&all)?.concat())
            })?;
        let mut shape = t.size();
        if shape.is_empty() {
            shape.push(1);
        }
        shape[0] *= self.world_size() as i64;
        tensor_from_bytes(&out, t.kind(), &shape, t.device())
    }

    fn broadcast(&mut self, t: &Tensor, root: usize) -> Result<(), DistError> {
        if self.world_size() == 1 && root == 0 {
            return Ok(());
        }
        let mine = if self.rank() == root {
            Self::contribution(t)?
        } else {
            header(t)
        };
        let out = self.star.exchange(Op::Broadcast, mine, |all| {
            let root_bytes = all.get(root).ok_or_else(|| format!("no rank {root}"))?;
            let h0 = split_header(root_bytes).ok_or("a malformed frame")?.0;
            for (r, b) in all.iter().enumerate() {
                let h = split_header(b).ok_or("a malformed frame")?.0;
                if h != h0 {
                    return Err(format!(
                        "rank {r} expects {} where rank {root} sends {}",
                        describe(h),
                        describe(h0)
                    ));
                }
            }
            Ok(split_header(root_bytes)
                .ok_or("a malformed frame")?
                .1
                .to_vec())
        })?;
        Self::write_back(t, &out)
    }

    fn max_u64(&mut self, value: u64) -> Result<u64, DistError> {
        let out = self
            .star
            .exchange(Op::Max, value.to_le_bytes().to_vec(), |all| {
                let mut m = 0u64;
                for b in &all {
                    let v: [u8; 8] = b.as_slice().try_into().map_err(|_| "a malformed frame")?;
                    m = m.max(u64::from_le_bytes(v));
                }
                Ok(m.to_le_bytes().to_vec())
            })?;
        let v: [u8; 8] = out
            .as_slice()
            .try_into()
            .map_err(|_| DistError::Collective {
                op: "max",
                rank: self.rank(),
                message: "a malformed answer".into(),
            })?;
        Ok(u64::from_le_bytes(v))
    }

    fn broadcast_bytes(&mut self, bytes: Vec<u8>, root: usize) -> Result<Vec<u8>, DistError> {
        let mine = if self.rank() == root {
            bytes
        } else {
            Vec::new()
        };
        self.star.exchange(Op::Bytes, mine, |mut all| {
            if root >= all.len() {
                return Err(format!("no rank {root}"));
            }
            Ok(all.swap_remove(root))
        })
    }
}
