//! TRM's recursion (`models/recursive_reasoning/trm.py`, `TinyRecursiveReasoningModel_ACTV1_Inner.forward`;
//! trm-spec 2): one network updates both states, `H_cycles - 1` cycles without autograd, then one cycle with
//! full backpropagation through its `L_cycles + 1` calls.

use tch::Tensor;

use crate::config::ModelConfig;
use crate::layers::Level;
use crate::layers::{ReasoningModule, Rotary};

/// One cycle: `L_cycles` times z_L ← net(z_L, z_H + x), then z_H ← net(z_H, z_L); `record` sees every call.
fn cycle(
    net: &ReasoningModule,
    config: &ModelConfig,
    (z_h, mut z_l): (Tensor, Tensor),
    x: &Tensor,
    rotary: Option<&Rotary>,
    record: &mut dyn FnMut(Level, &Tensor),
) -> (Tensor, Tensor) {
    for _ in 0..config.l_cycles {
        z_l = net.forward(&z_l, &(&z_h + x), rotary);
        record(Level::L, &z_l);
    }
    let z_h = net.forward(&z_h, &z_l, rotary);
    record(Level::L, &z_h);
    (z_h, z_l)
}

/// The TRM recursion from the carried states `(z_H, z_L)` with input embedding `x`; returns the new `(z_H, z_L)`
/// (not detached: the last cycle carries the graph). `H_cycles · (L_cycles + 1)` calls of `net`; only the last
/// `L_cycles + 1` are recorded by autograd, so activation memory grows with `L_cycles`, not with `H_cycles`.
///
/// # Shapes
/// `z_h`, `z_l`, `x`: `[B, S+P, D]` → two `[B, S+P, D]`.
pub(crate) fn recursion(
    net: &ReasoningModule,
    config: &ModelConfig,
    z_h: &Tensor,
    z_l: &Tensor,
    x: &Tensor,
    rotary: Option<&Rotary>,
    record: &mut dyn FnMut(Level, &Tensor),
) -> (Tensor, Tensor) {
    let state = tch::no_grad(|| {
        let mut state = (z_h.detach(), z_l.detach());
        for _ in 1..config.h_cycles {
            state = cycle(net, config, state, x, rotary, &mut *record);
        }
        state
    });
    cycle(net, config, state, x, rotary, record)
}
