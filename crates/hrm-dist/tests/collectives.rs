//! The host backends (in-process and TCP) against plain arithmetic, and the documented rendezvous and
//! collective failures: no rank 1, a port in use, no rank 0, a rank that dies, ranks out of step.

use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use hrm_dist::{all_reduce_flat, local, tcp, Collective, Timeouts, WorldEnv};
use hrm_testkit::free_port;
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

fn env(rank: usize, world: usize, port: u16) -> WorldEnv {
    WorldEnv {
        rank,
        local_rank: rank,
        world_size: world,
        master_addr: "127.0.0.1".into(),
        master_port: port,
    }
}

fn short(rendezvous_s: f64, op_s: f64) -> Timeouts {
    Timeouts {
        rendezvous: Duration::from_secs_f64(rendezvous_s),
        collective: Duration::from_secs_f64(op_s),
    }
}

/// The same checks on every rank of a world, each against the arithmetic it stands for.
fn exercise(c: &mut dyn Collective) {
    let (r, w) = (c.rank() as i64, c.world_size() as i64);
    // all_reduce: rank r holds r + i.
    let t = (Tensor::arange(6, (Kind::Float, CPU)) + r as f64).view([2, 3]);
    c.all_reduce_sum(&t).unwrap();
    let expect =
        (Tensor::arange(6, (Kind::Float, CPU)) * w as f64 + (w * (w - 1) / 2) as f64).view([2, 3]);
    assert!(t.equal(&expect), "rank {r}: {t}");
    let i = Tensor::from_slice(&[r, 1]);
    c.all_reduce_sum(&i).unwrap();
    assert_eq!(Vec::<i64>::try_from(&i).unwrap(), vec![w * (w - 1) / 2, w]);
    // all_gather of a bool tensor and of a bf16 one.
    let b = Tensor::from_slice(&[r % 2 == 0, true]);
    let g = c.all_gather(&b).unwrap();
    assert_eq!(g.size(), vec![2 * w]);
    let want: Vec<bool> = (0..w).flat_map(|q| [q % 2 == 0, true]).collect();
    assert_eq!(Vec::<bool>::try_from(&g).unwrap(), want);
    let h = Tensor::full([1, 2], r as f64, (Kind::BFloat16, CPU));
    let g = c.all_gather(&h).unwrap();
    assert_eq!(g.size(), vec![w, 2]);
    assert_eq!(
        Vec::<f32>::try_from(&g.to_kind(Kind::Float).reshape([-1])).unwrap(),
        (0..w)
            .flat_map(|q| [q as f32, q as f32])
            .collect::<Vec<_>>()
    );
    // broadcast from the last rank.
    let x = Tensor::full([3], r as f64, (Kind::Double, CPU));
    c.broadcast(&x, (w - 1) as usize).unwrap();
    assert_eq!(Vec::<f64>::try_from(&x).unwrap(), vec![(w - 1) as f64; 3]);
    assert_eq!(c.max_u64(r as u64 * 10).unwrap(), (w as u64 - 1) * 10);
    let bytes = c.broadcast_bytes(vec![r as u8; 3], 0).unwrap();
    assert_eq!(bytes, vec![0u8; 3]);
    // Flat buckets: mixed kinds and a bucket smaller than one tensor.
    let ts = vec![
        Tensor::full([5], 1.0, (Kind::Float, CPU)),
        Tensor::full([2, 2], 2.0, (Kind::Float, CPU)),
        Tensor::full([3], 3, (Kind::Int64, CPU)),
        Tensor::full([1], 4.0, (Kind::Float, CPU)),
    ];
    all_reduce_flat(c, &ts, 24).unwrap();
    for (t, v) in ts.iter().zip([1.0, 2.0, 3.0, 4.0]) {
        let got = Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).unwrap();
        assert!(got.iter().all(|&g| g == v * w as f64), "rank {r}: {t}");
    }
    c.barrier().unwrap();
}

#[test]
fn local_world_of_four_computes_every_collective() {
    let handles: Vec<_> = local::world(4, Duration::from_secs(30))
        .into_iter()
        .map(|mut c| thread::spawn(move || exercise(&mut c)))
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn tcp_world_of_three_computes_every_collective() {
    let port = free_port();
    let handles: Vec<_> = (0..3)
        .map(|r| {
            thread::spawn(move || {
                let mut c = tcp::connect(&env(r, 3, port), short(30.0, 30.0)).unwrap();
                assert_eq!(c.backend(), "tcp");
                exercise(&mut c);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_missing_rank_fails_the_rendezvous_with_its_number() {
    let port = free_port();
    // Ranks 0 and 2 of 3 come; rank 1 never does.
    let joined =
        thread::spawn(move || tcp::connect(&env(2, 3, port), short(1.5, 5.0)).unwrap_err());
    let e = tcp::connect(&env(0, 3, port), short(1.0, 5.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rank(s) [1] did not join"), "{e}");
    let e2 = joined.join().unwrap().to_string();
    assert!(
        e2.contains("rank 0 reports") && e2.contains("[1] did not join"),
        "{e2}"
    );
}

#[test]
fn a_port_in_use_is_named() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let e = tcp::connect(&env(0, 2, port), short(1.0, 1.0))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("port {port} is in use")), "{e}");
}

#[test]
fn no_rank_zero_times_out_with_the_address() {
    let port = free_port();
    let e = tcp::connect(&env(1, 2, port), short(0.5, 1.0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no rank 0 answered") && e.contains(&format!("127.0.0.1:{port}")),
        "{e}"
    );
}

#[test]
fn a_rank_that_dies_is_an_error_on_the_others() {
    let port = free_port();
    let dies = thread::spawn(move || {
        let c = tcp::connect(&env(1, 2, port), short(10.0, 10.0)).unwrap();
        drop(c);
    });
    let mut c0 = tcp::connect(&env(0, 2, port), short(10.0, 10.0)).unwrap();
    dies.join().unwrap();
    let e = c0
        .all_reduce_sum(&Tensor::from_slice(&[1.0f32]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rank 1 closed its connection"), "{e}");
}

#[test]
fn a_silent_rank_times_out() {
    let mut world = local::world(2, Duration::from_millis(300));
    let _silent = world.pop().unwrap();
    let mut c0 = world.pop().unwrap();
    let e = c0.max_u64(1).unwrap_err().to_string();
    assert!(e.contains("no word from rank 1"), "{e}");
}

#[test]
fn ranks_out_of_step_are_told_so() {
    let port = free_port();
    let other = thread::spawn(move || {
        let mut c = tcp::connect(&env(1, 2, port), short(10.0, 10.0)).unwrap();
        c.max_u64(3).unwrap_err().to_string()
    });
    let mut c0 = tcp::connect(&env(0, 2, port), short(10.0, 10.0)).unwrap();
    let e0 = c0
        .all_reduce_sum(&Tensor::from_slice(&[1.0f32]))
        .unwrap_err()
        .to_string();
    assert!(e0.contains("out of step"), "{e0}");
    let e1 = other.join().unwrap();
    assert!(
        e1.contains("rank 0 reports") && e1.contains("out of step"),
        "{e1}"
    );
    // A shape mismatch is named too.
    let mut w = local::world(2, Duration::from_secs(10));
    let mut c1 = w.pop().unwrap();
    let mut c0 = w.pop().unwrap();
    let t = thread::spawn(move || c1.all_reduce_sum(&Tensor::zeros([3], (Kind::Float, CPU))));
    let e = c0
        .all_reduce_sum(&Tensor::zeros([2], (Kind::Float, CPU)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape [3]") && e.contains("shape [2]"), "{e}");
    assert!(t.join().unwrap().is_err());
}
