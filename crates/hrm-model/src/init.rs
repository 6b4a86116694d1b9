//! JAX-style truncated-normal initialisation (spec 3.7) drawn from an explicit RNG.
//! Follows the reference's `models/common.py`.

use rand::Rng;
use tch::{Kind, Tensor};

/// Lower truncation bound in standard deviations.
const LOWER: f64 = -2.0;
/// Upper truncation bound in standard deviations.
const UPPER: f64 = 2.0;

/// The error function, accurate to about 1e-15 (Abramowitz–Stegun 7.1.26 is too coarse, so a series/continued
/// fraction pair is used).
fn erf(x: f64) -> f64 {
    if x < 0.0 {
        return -erf(-x);
    }
    if x < 2.5 {
        // Maclaurin series: erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)).
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term.abs() > 1e-18 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc, evaluated backwards.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        1.0 - (-x * x).exp() / (std::f64::consts::PI.sqrt() * (x + f))
    }
}

/// The scale c = std / σ_trunc, where σ_trunc ≈ 0.8796257 is the std of N(0, 1) truncated at ±2.
///
/// It is computed from the closed form the reference uses, not from the rounded constant.
pub fn trunc_normal_scale(std: f64) -> f64 {
    let z = (erf(UPPER / std::f64::consts::SQRT_2) - erf(LOWER / std::f64::consts::SQRT_2)) / 2.0;
    let c = (2.0 * std::f64::consts::PI).powf(-0.5);
    let pdf_u = c * (-0.5 * LOWER * LOWER).exp();
    let pdf_l = c * (-0.5 * UPPER * UPPER).exp();
    let var = 1.0 - (UPPER * pdf_u - LOWER * pdf_l) / z - ((pdf_u - pdf_l) / z).powi(2);
    std / var.sqrt()
}

/// Draws a float32 CPU tensor of `shape` from the truncated normal of spec 3.7 with the given `std`.
///
/// u is uniform in [erf(−2/√2), erf(2/√2)], x = √2 · erfinv(u) · c, clipped to ±2c with c = std / 0.8796257.
/// `std == 0` gives zeros and draws nothing. The uniforms come from `rng` (32 random bits each).
pub fn trunc_normal<R: Rng + ?Sized>(shape: &[i64], std: f64, rng: &mut R) -> Tensor {
    if std == 0.0 {
        return Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
    }
    let numel: i64 = shape.iter().product();
    let mut bits = vec![0i32; numel as usize];
    rng.fill(&mut bits[..]);
    let a = erf(LOWER / std::f64::consts::SQRT_2);
    let b = erf(UPPER / std::f64::consts::SQRT_2);
    let comp_std = trunc_normal_scale(std);
    // Map the 32 random bits to [0, 1) in float64, then to [a, b).
    let u = (Tensor::from_slice(&bits).to_kind(Kind::Double) + 2147483648.0) / 4294967296.0;
    let u = u * (b - a) + a;
    let x = u.erfinv() * (std::f64::consts::SQRT_2 * comp_std);
    x.clamp(LOWER * comp_std, UPPER * comp_std)
        .to_kind(Kind::Float)
        .reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(2.0 / std::f64::consts::SQRT_2) - 0.954_499_736_103_641_6).abs() < 1e-13);
        assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-13);
        assert!((erf(3.0) - 0.999_977_909_503_001_4).abs() < 1e-13);
    }

    #[test]
    fn scale_matches_the_spec_constant() {
        assert!((trunc_normal_scale(1.0) - 1.0 / 0.879_625_7).abs() < 1e-6);
        assert!((trunc_normal_scale(1.0) - 1.136_847_2).abs() < 1e-6);
        // LeCun std for in = 512 gives the clip bound ±0.100484 (spec 11).
        assert!((2.0 * trunc_normal_scale(1.0 / 512f64.sqrt()) - 0.100484).abs() < 1e-6);
    }

    #[test]
    fn samples_have_the_target_std_and_respect_the_bound() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for std in [1.0, 0.0441942, 0.0255155] {
            let t = trunc_normal(&[400, 500], std, &mut rng);
            assert_eq!(t.kind(), Kind::Float);
            assert_eq!(t.size(), vec![400, 500]);
            let sample_std = t.to_kind(Kind::Double).std(true).double_value(&[]);
            let mean = t.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
            let max_abs = t.abs().max().double_value(&[]);
            let bound = 2.0 * trunc_normal_scale(std);
            assert!(
                (sample_std / std - 1.0).abs() < 0.01,
                "std {sample_std} vs {std}"
            );
            assert!(mean.abs() < 0.01 * std, "mean {mean}");
            assert!(max_abs <= bound * (1.0 + 1e-6), "max {max_abs} > {bound}");
            // The bound is actually approached: values within 2% of it exist.
            assert!(max_abs > 0.98 * bound, "max {max_abs} far from {bound}");
        }
    }

    #[test]
    fn same_seed_same_values_and_zero_std_gives_zeros() {
        let a = trunc_normal(&[3, 4], 0.5, &mut ChaCha8Rng::seed_from_u64(1));
        let b = trunc_normal(&[3, 4], 0.5, &mut ChaCha8Rng::seed_from_u64(1));
        let c = trunc_normal(&[3, 4], 0.5, &mut ChaCha8Rng::seed_from_u64(2));
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        let z = trunc_normal(&[2, 2], 0.0, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(z.abs().sum(Kind::Double).double_value(&[]), 0.0);
    }
}
