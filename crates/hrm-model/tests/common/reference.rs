//! One golden trace with its `float64/` twin, and the bounds of every comparison against it.
//!
//! The bound of a tensor is the larger of the golden README's bound for its kind and [`NOISE_FACTOR`] times the
//! reference's own rounding error, measured on that tensor as max |f32_ref − f64_ref| (the twin is the same run in
//! float64 from the same weights and batch). Without a twin, or for a tensor the twin lacks, the README's bound
//! alone applies. So a recurrent configuration whose float32 rounding grows from segment to segment gets a bound
//! that grows with it, and a bug (an error far above the measured noise) still fails.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::{Forward, Tolerances};

/// The factor on the measured float32-vs-float64 spread. Our float32 result and the reference's are two
/// independent roundings of the same exact value, so their distance is up to about twice the reference's own
/// distance to it; 4 leaves a further factor 2 for the ordering of reductions (our kernels are not the
/// reference's).
pub const NOISE_FACTOR: f64 = 4.0;

/// The worst comparisons of a set: the largest share of its bound one tensor used, and the largest ratio of our
/// error to the reference's measured float noise (max |ours − ref| / max |f32_ref − f64_ref|).
#[derive(Debug, Clone, Default)]
pub struct Worst {
    pub used: f64,
    pub used_name: String,
    pub to_noise: f64,
    pub to_noise_name: String,
    /// How many bounds were raised above the README's by the measured noise.
    pub raised: usize,
}

thread_local! {
    static WORST: RefCell<Worst> = RefCell::new(Worst::default());
}

/// The worst comparisons of this thread since the last call (and resets them).
pub fn take_worst() -> Worst {
    WORST.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

fn record(name: &str, used: f64, to_noise: Option<f64>, raised: bool) {
    WORST.with(|w| {
        let mut w = w.borrow_mut();
        if used > w.used || w.used_name.is_empty() {
            w.used = used;
            w.used_name = name.to_string();
        }
        if let Some(r) = to_noise.filter(|r| *r > w.to_noise || w.to_noise_name.is_empty()) {
            w.to_noise = r;
            w.to_noise_name = name.to_string();
        }
        w.raised += usize::from(raised);
    });
}

pub(super) fn f64s(t: &Tensor) -> Tensor {
    t.detach().to_device(Device::Cpu).to_kind(Kind::Double)
}

/// A measured spread, at least one float32 step of the tensor's largest value (the spread is 0 where the float32
/// and float64 runs round to the same value), for the ratio of our error to it.
fn ulp_floor(spread: f64, reference: &Tensor) -> f64 {
    spread
        .max(f64::from(f32::EPSILON) * max_abs(reference))
        .max(1e-300)
}

fn max_abs(t: &Tensor) -> f64 {
    if t.numel() == 0 {
        return 0.0;
    }
    t.abs().max().double_value(&[])
}

/// Whether `HRM_TEST_REPORT` asks every bounded check to print its worst error.
pub(super) fn report() -> bool {
    std::env::var_os("HRM_TEST_REPORT").is_some()
}

/// A golden trace, its float64 twin when the set has one, and the tolerances of the run.
pub struct Reference {
    trace: HashMap<String, Tensor>,
    twin: Option<HashMap<String, Tensor>>,
    /// The README's bounds for the forward dtype the model runs in.
    pub tol: &'static Tolerances,
}

impl Reference {
    /// Reads `trace` (a safetensors file) and `float64/<its name>` beside it when present.
    pub fn read(trace: &Path, tol: &'static Tolerances) -> Self {
        let twin_path = trace
            .parent()
            .expect("a trace file has a folder")
            .join("float64")
            .join(trace.file_name().expect("a trace file has a name"));
        let twin = twin_path.is_file().then(|| read(&twin_path));
        Reference {
            trace: read(trace),
            twin,
            tol,
        }
    }

    /// Whether the set has a float64 twin.
    pub fn has_twin(&self) -> bool {
        self.twin.is_some()
    }

    /// The keys of the trace.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.trace.keys()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.trace.contains_key(name)
    }

    /// The reference tensor `name` (a missing one fails the test).
    pub fn get(&self, name: &str) -> &Tensor {
        self.trace
            .get(name)
            .unwrap_or_else(|| panic!("golden tensor `{name}` missing"))
    }

    pub fn try_get(&self, name: &str) -> Option<&Tensor> {
        self.trace.get(name)
    }

    /// |f32_ref − f64_ref| of `name` in float64, when the twin has it.
    fn spread(&self, name: &str) -> Option<Tensor> {
        let twin = self.twin.as_ref()?.get(name)?;
        let want = self.get(name);
        assert_eq!(twin.size(), want.size(), "float64/{name}: shape");
        Some((f64s(want) - f64s(twin)).abs())
    }

    /// Elementwise `|got − ref| ≤ max(atol + rtol·|ref|, NOISE_FACTOR · max |f32_ref − f64_ref|)`.
    pub fn close(&self, name: &str, got: &Tensor, atol: f64, rtol: f64) {
        let want = self.get(name);
        assert_eq!(got.size(), want.size(), "{name}: shape");
        let (g, w) = (f64s(got), f64s(want));
        let diff = (&g - &w).abs();
        let readme = w.abs() * rtol + atol;
        let spread = self.spread(name).map(|s| max_abs(&s));
        let noise = NOISE_FACTOR * spread.unwrap_or(0.0);
        let allowed = readme.clamp_min(noise);
        let used = (&diff / &allowed).max().double_value(&[]);
        let worst = max_abs(&diff);
        let raised = (readme.lt(noise)).any().int64_value(&[]) != 0;
        record(name, used, spread.map(|s| worst / ulp_floor(s, &w)), raised);
        if report() {
            eprintln!(
                "report {name}: max |Δ| {worst:.3e}, noise {:.3e}, {:.1}% of the bound",
                spread.unwrap_or(f64::NAN),
                100.0 * used
            );
        }
        assert!(
            used <= 1.0,
            "{name}: max |Δ| {worst:.3e} exceeds max(atol {atol:e} + rtol {rtol:e}·|ref|, {NOISE_FACTOR} × float \
             noise {:.3e}) ({:.2}× the bound)",
            spread.unwrap_or(0.0),
            used
        );
    }

    /// A forward tensor: elementwise as [`Reference::close`], then normwise (bf16 only) with the same rule.
    pub fn forward(&self, name: &str, got: &Tensor, bound: Forward) {
        self.close(name, got, bound.atol, bound.rtol);
        if bound.norm.is_finite() {
            let (g, w) = (f64s(got), f64s(self.get(name)));
            let delta = (&g - &w).norm().double_value(&[]);
            let noise = self
                .spread(name)
                .map_or(0.0, |s| NOISE_FACTOR * s.norm().double_value(&[]));
            let allowed = (bound.norm * w.norm().double_value(&[])).max(noise);
            assert!(
                delta <= allowed,
                "{name}: ‖Δ‖ {delta:.3e} exceeds max({:e}·‖ref‖, {NOISE_FACTOR} × ‖float noise‖) = {allowed:.3e}",
                bound.norm
            );
        }
    }

    /// Gradients: `max |Δ| ≤ max(grad_rel · max |ref|, NOISE_FACTOR · max |f32_ref − f64_ref|)` per tensor.
    pub fn grad(&self, name: &str, got: &Tensor) {
        let want = self.get(name);
        assert_eq!(got.size(), want.size(), "{name}: shape");
        let worst = max_abs(&(f64s(got) - f64s(want)));
        let readme = self.tol.grad_rel * max_abs(&f64s(want));
        let spread = self.spread(name).map(|s| max_abs(&s));
        let allowed = readme.max(NOISE_FACTOR * spread.unwrap_or(0.0));
        let used = worst / allowed.max(1e-300);
        record(
            name,
            used,
            spread.map(|s| worst / ulp_floor(s, &f64s(want))),
            allowed > readme,
        );
        if report() {
            eprintln!(
                "report {name}: max |Δ| {worst:.3e}, {:.0}% of the bound",
                100.0 * used
            );
        }
        assert!(
            worst <= allowed,
            "{name}: max |Δ| {worst:.3e} > max({:e}·max|ref|, {NOISE_FACTOR} × float noise {:.3e}) = {allowed:.3e}",
            self.tol.grad_rel,
            spread.unwrap_or(0.0)
        );
    }

    /// A scalar: `|got − ref| ≤ max(rtol·|ref|, NOISE_FACTOR · |f32_ref − f64_ref|)`.
    pub fn rel(&self, name: &str, got: f64, rtol: f64) {
        let want = self.get(name).to_kind(Kind::Double).double_value(&[]);
        let spread = self.spread(name).map(|s| s.double_value(&[]));
        let readme = rtol * want.abs();
        let allowed = readme.max(NOISE_FACTOR * spread.unwrap_or(0.0));
        let used = (got - want).abs() / allowed.max(1e-300);
        record(
            name,
            used,
            spread.map(|s| (got - want).abs() / s.max(f64::from(f32::EPSILON) * want.abs())),
            allowed > readme,
        );
        if report() {
            eprintln!(
                "report {name}: got {got} want {want}, {:.0}% of the bound",
                100.0 * used
            );
        }
        assert!(
            (got - want).abs() <= allowed,
            "{name}: got {got} want {want} (rtol {rtol:e}, float noise {:.3e})",
            spread.unwrap_or(0.0)
        );
    }

    /// The twin took the reference's discrete path: same halting, steps and integer metrics. Without that the
    /// spread of the later segments measures another computation, so such a set must be regenerated with
    /// another seed (see `tests/sweep/make.py`).
    pub fn check_twin_decisions(&self) {
        let Some(twin) = &self.twin else { return };
        for (name, want) in &self.trace {
            if want.is_floating_point() {
                continue;
            }
            let other = twin
                .get(name)
                .unwrap_or_else(|| panic!("float64/{name} missing"));
            assert!(
                want.to_kind(Kind::Int64).equal(&other.to_kind(Kind::Int64)),
                "{name}: the float64 twin decided otherwise ({want:?} vs {other:?}): the set sits within float \
                 noise of a threshold; regenerate it with another seed"
            );
        }
    }
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}
