//! The learning-rate schedule (spec 7.3): linear warmup, then cosine decay to a minimum ratio,
//! and the nominal total step count computed from the dataset metadata.
//! Follows the reference's `pretrain.py`.

/// The learning rate at optimizer step `step` (counted from 1: the first update uses `step = 1`).
///
/// * `step < warmup`: `base · step / max(1, warmup)`;
/// * otherwise: `base · (r + (1−r) · ½ · (1 + cos(π · progress)))` with
///   `progress = (step − warmup) / max(1, total − warmup)` and `r = min_ratio`.
///
/// With `min_ratio = 1.0` (HRM's default) the rate is constant after warmup. Past `total` the
/// formula is still evaluated (the cosine rises again), exactly as the reference does; the caller
/// stops training there.
pub fn lr_at(step: u64, base: f64, warmup: u64, total: u64, min_ratio: f64) -> f64 {
    if step < warmup {
        return base * step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    let cosine = (1.0 - min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    base * (min_ratio + cosine.max(0.0))
}

/// The nominal number of optimizer steps, `int(epochs · total_groups · mean_puzzle_examples / global_batch)`.
///
/// The product `epochs · total_groups` is taken in integers and the rest in f64, in the
/// reference's order of operations. The data loader decides the real count (spec 7.4).
/// Returns 0 for a zero batch size.
pub fn total_steps(
    epochs: u64,
    total_groups: u64,
    mean_puzzle_examples: f64,
    global_batch: u64,
) -> u64 {
    if global_batch == 0 {
        return 0;
    }
    let examples = (epochs as u128 * total_groups as u128) as f64 * mean_puzzle_examples;
    (examples / global_batch as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_from_step_one() {
        assert_eq!(lr_at(1, 1e-4, 2000, 26041, 1.0), 1e-4 / 2000.0);
        assert_eq!(lr_at(1000, 1e-4, 2000, 26041, 1.0), 1e-4 * 1000.0 / 2000.0);
        assert_eq!(lr_at(1999, 2.0, 2000, 26041, 1.0), 2.0 * 1999.0 / 2000.0);
    }

    #[test]
    fn zero_warmup_starts_at_base() {
        assert_eq!(lr_at(1, 3e-4, 0, 100, 1.0), 3e-4);
    }

    #[test]
    fn total_steps_zero_batch_is_zero() {
        assert_eq!(total_steps(10, 10, 1.0, 0), 0);
    }
}
