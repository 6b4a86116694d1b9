//! The rendezvous (rank 0 listens at `MASTER_ADDR:MASTER_PORT`, every other rank connects and says who it is)
//! and the TCP backend built on its connections: length-prefixed frames over one socket per rank, with a read
//! timeout so that a dead or stuck peer becomes an error on every rank rather than a hang.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::wire::{HostCollective, Link, Op, Star};
use crate::{DistError, Timeouts, WorldEnv};

/// The first bytes of every hello: a protocol name and version.
const MAGIC: &[u8; 8] = b"HRMDIST1";

/// The largest frame a rank accepts (16 GiB), against a corrupted length.
const MAX_FRAME: u64 = 16 << 30;

/// One socket to a peer.
#[derive(Debug)]
struct TcpLink {
    peer: usize,
    stream: TcpStream,
    timeout: Duration,
}

impl TcpLink {
    fn explain(&self, e: &std::io::Error) -> String {
        match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
                "no word from rank {} within {:.0} s (HRM_DIST_OP_TIMEOUT_S); is it stuck or dead?",
                self.peer,
                self.timeout.as_secs_f64()
            ),
            ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe => format!(
                "rank {} closed its connection (it stopped or died; see its own error)",
                self.peer
            ),
            _ => format!("connection to rank {}: {e}", self.peer),
        }
    }
}

impl Link for TcpLink {
    fn send(&mut self, op: Op, payload: &[u8]) -> Result<(), String> {
        let mut head = [0u8; 9];
        head[0] = op as u8;
        head[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        self.stream
            .write_all(&head)
            .and_then(|_| self.stream.write_all(payload))
            .and_then(|_| self.stream.flush())
            .map_err(|e| self.explain(&e))
    }

    fn recv(&mut self) -> Result<(Op, Vec<u8>), String> {
        let mut head = [0u8; 9];
        self.stream
            .read_exact(&mut head)
            .map_err(|e| self.explain(&e))?;
        let op = Op::from_u8(head[0])
            .ok_or_else(|| format!("rank {} sent an unknown frame {}", self.peer, head[0]))?;
        let len = u64::from_le_bytes(head[1..].try_into().unwrap_or([0; 8]));
        if len > MAX_FRAME {
            return Err(format!(
                "rank {} announced a frame of {len} bytes",
                self.peer
            ));
        }
        let mut payload = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut payload)
            .map_err(|e| self.explain(&e))?;
        Ok((op, payload))
    }
}

fn hello(rank: usize, world: usize) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&(rank as u64).to_le_bytes());
    b.extend_from_slice(&(world as u64).to_le_bytes());
    b
}

fn parse_hello(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() != 24 || &b[..8] != MAGIC {
        return None;
    }
    let r = u64::from_le_bytes(b[8..16].try_into().ok()?) as usize;
    let w = u64::from_le_bytes(b[16..24].try_into().ok()?) as usize;
    Some((r, w))
}

/// Meets the other ranks of `env` and returns the TCP backend over the connections.
///
/// Rank 0 binds `MASTER_ADDR:MASTER_PORT` (a port in use is an error at once) and waits up to
/// `timeouts.rendezvous` for every other rank; the others connect, retrying until the same deadline. A rank that
/// never comes, a second rank with the same number or a different `WORLD_SIZE` fails the rendezvous on every
/// rank that came, with the reason.
pub fn connect(env: &WorldEnv, timeouts: Timeouts) -> Result<HostCollective, DistError> {
    let star = rendezvous(env, timeouts)?;
    Ok(HostCollective { star, name: "tcp" })
}

pub(crate) fn rendezvous(env: &WorldEnv, timeouts: Timeouts) -> Result<Star, DistError> {
    let fail = |message: String| DistError::Rendezvous {
        addr: env.address(),
        rank: env.rank,
        world: env.world_size,
        message,
    };
    let deadline = Instant::now() + timeouts.rendezvous;
    let links = if env.rank == 0 {
        accept_all(env, timeouts, deadline).map_err(fail)?
    } else {
        vec![join(env, timeouts, deadline).map_err(fail)?]
    };
    Ok(Star {
        rank: env.rank,
        world: env.world_size,
        links,
    })
}

fn resolve(env: &WorldEnv) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = (env.master_addr.as_str(), env.master_port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve MASTER_ADDR `{}`: {e}", env.master_addr))?
        .collect();
    if addrs.is_empty() {
        return Err(format!(
            "MASTER_ADDR `{}` resolves to no address",
            env.master_addr
        ));
    }
    Ok(addrs)
}

fn accept_all(
    env: &WorldEnv,
    timeouts: Timeouts,
    deadline: Instant,
) -> Result<Vec<Box<dyn Link>>, String> {
    let addrs = resolve(env)?;
    let listener = TcpListener::bind(addrs.as_slice()).map_err(|e| match e.kind() {
        ErrorKind::AddrInUse => format!(
            "port {} is in use on {}: another run or program holds it; choose another MASTER_PORT \
             (`hrm train --nproc` picks a free one)",
            env.master_port, env.master_addr
        ),
        _ => format!("cannot listen at {}: {e}", env.address()),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let mut slots: Vec<Option<TcpLink>> = (1..env.world_size).map(|_| None).collect();
    let result = (|| {
        while slots.iter().any(Option::is_none) {
            match listener.accept() {
                Ok((stream, from)) => {
                    let mut link = TcpLink {
                        peer: usize::MAX,
                        stream,
                        timeout: timeouts.collective,
                    };
                    configure(
                        &link.stream,
                        deadline.saturating_duration_since(Instant::now()),
                    )?;
                    let (op, body) = link
                        .recv()
                        .map_err(|e| format!("a connection from {from} said nothing: {e}"))?;
                    let Some((r, w)) = (op == Op::Hello).then(|| parse_hello(&body)).flatten()
                    else {
                        tracing::warn!(%from, "ignored a connection that is not a rank");
                        continue;
                    };
                    if w != env.world_size {
                        return Err(format!(
                            "rank {r} (from {from}) has WORLD_SIZE {w}, rank 0 has {}",
                            env.world_size
                        ));
                    }
                    if r == 0 || r >= env.world_size {
                        return Err(format!("a process from {from} claims rank {r}"));
                    }
                    if slots[r - 1].is_some() {
                        return Err(format!(
                            "two processes claim rank {r} (the second from {from}); check RANK"
                        ));
                    }
                    link.peer = r;
                    slots[r - 1] = Some(link);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let missing: Vec<usize> = slots
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.is_none())
                            .map(|(i, _)| i + 1)
                            .collect();
                        return Err(format!(
                            "rank(s) {missing:?} did not join within {:.0} s (HRM_DIST_TIMEOUT_S); \
                             were they started, with the same MASTER_ADDR and MASTER_PORT?",
                            timeouts.rendezvous.as_secs_f64()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(format!("accepting at {}: {e}", env.address())),
            }
        }
        Ok(())
    })();
    let mut links: Vec<TcpLink> = slots.into_iter().flatten().collect();
    if let Err(message) = result {
        for l in links.iter_mut() {
            let _ = l.send(Op::Error, message.as_bytes());
        }
        return Err(message);
    }
    let mut out: Vec<Box<dyn Link>> = Vec::new();
    for mut l in links {
        configure(&l.stream, timeouts.collective)?;
        l.send(Op::Ready, &[])?;
        out.push(Box::new(l));
    }
    Ok(out)
}

fn configure(stream: &TcpStream, read_timeout: Duration) -> Result<(), String> {
    stream
        .set_nonblocking(false)
        .and_then(|_| stream.set_nodelay(true))
        .and_then(|_| stream.set_read_timeout(Some(read_timeout.max(Duration::from_millis(1)))))
        .map_err(|e| format!("configuring a socket: {e}"))
}

fn join(env: &WorldEnv, timeouts: Timeouts, deadline: Instant) -> Result<Box<dyn Link>, String> {
    let addrs = resolve(env)?;
    let stream = loop {
        let attempt = addrs.iter().find_map(|a| {
            let left = deadline.saturating_duration_since(Instant::now());
            TcpStream::connect_timeout(
                a,
                left.clamp(Duration::from_millis(10), Duration::from_secs(5)),
            )
            .ok()
        });
        if let Some(s) = attempt {
            break s;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no rank 0 answered at {} within {:.0} s (HRM_DIST_TIMEOUT_S); is rank 0 running, and is \
                 MASTER_ADDR/MASTER_PORT the same on every rank?",
                env.address(),
                timeouts.rendezvous.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Rank 0 answers once every rank has joined, so wait for the rest of the rendezvous time and a little more.
    configure(
        &stream,
        deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5),
    )?;
    let mut link = TcpLink {
        peer: 0,
        stream,
        timeout: timeouts.rendezvous,
    };
    link.send(Op::Hello, &hello(env.rank, env.world_size))?;
    match link.recv() {
        Ok((Op::Ready, _)) => {}
        Ok((Op::Error, m)) => {
            return Err(format!("rank 0 reports: {}", String::from_utf8_lossy(&m)))
        }
        Ok((o, _)) => return Err(format!("rank 0 answered `{}` to the hello", o.name())),
        Err(e) => return Err(format!("waiting for the other ranks: {e}")),
    }
    configure(&link.stream, timeouts.collective)?;
    link.timeout = timeouts.collective;
    Ok(Box::new(link))
}
