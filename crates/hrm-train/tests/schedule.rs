//! The LR schedule and the nominal total step counts of spec 7.3, 7.6 and 11.

use hrm_train::schedule::{lr_at, total_steps};

#[test]
fn constant_after_warmup_with_ratio_one() {
    let base = 1e-4;
    assert_eq!(lr_at(1, base, 2000, 26041, 1.0), base / 2000.0);
    for s in [2000, 2001, 10_000, 26_041, 40_000] {
        assert_eq!(lr_at(s, base, 2000, 26041, 1.0), base, "step {s}");
    }
    assert!(lr_at(1999, base, 2000, 26041, 1.0) < base);
}

#[test]
fn cosine_with_min_ratio() {
    let (base, warmup, total, r) = (3e-4, 2000, 22_000, 0.1);
    // Start of the cosine: base; midpoint: base·(r + (1−r)/2); end: base·r.
    assert!((lr_at(warmup, base, warmup, total, r) - base).abs() < 1e-15);
    assert!((lr_at(12_000, base, warmup, total, r) - base * (r + (1.0 - r) * 0.5)).abs() < 1e-15);
    assert!((lr_at(total, base, warmup, total, r) - base * r).abs() < 1e-15);
    // A quarter of the way: base·(r + (1−r)·½·(1 + cos(π/4))).
    let quarter = base * (r + (1.0 - r) * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2));
    assert!((lr_at(7_000, base, warmup, total, r) - quarter).abs() < 1e-15);
    // Strictly decreasing over the cosine.
    let mut prev = f64::INFINITY;
    for s in (warmup..=total).step_by(500) {
        let lr = lr_at(s, base, warmup, total, r);
        assert!(lr < prev, "step {s}");
        prev = lr;
    }
}

#[test]
fn sudoku_1k_total_steps() {
    assert_eq!(total_steps(20_000, 1000, 1.0, 768), 26_041);
    assert_eq!(total_steps(20_000, 1000, 1.0, 384), 52_083);
}

#[test]
fn arc1_total_steps_from_metadata() {
    // Spec 11: 960 groups, 876,411 puzzles, 3,633,425 examples.
    let mean: f64 = 3_633_425.0 / 876_411.0;
    assert!((mean - 4.145800).abs() < 1e-6);
    assert_eq!(total_steps(100_000, 960, mean, 768), 518_225);
}
