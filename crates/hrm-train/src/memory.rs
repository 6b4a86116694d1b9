//! Memory checks made before anything is allocated, so that an impossible setting is refused with the numbers
//! instead of aborting on allocation or being killed by the kernel: the model's training state
//! ([`check_model_memory`]) and the activations of one batch ([`check_batch_memory`]). CPU only: on CUDA the
//! device's own allocator reports a clear out-of-memory error.

use hrm_model::ModelConfig;
use tch::Device;

use crate::run_error::RunError;

const GIB: f64 = (1u64 << 30) as f64;

/// Refuses, before anything is allocated, a model whose training state cannot fit in `available` bytes of main
/// memory (CPU training; `None`, or a CUDA device, is not checked): at least 16 bytes per dense parameter (f32
/// weights, gradients and AdamATan2's two moments) and 4 per puzzle-table value, from
/// [`ModelConfig::parameter_estimate`]. Names the parameters, both sizes and the `arch` keys.
pub fn check_model_memory(
    config: &ModelConfig,
    device: Device,
    available: Option<u64>,
) -> Result<(), RunError> {
    let Some(available) = available.filter(|_| device == Device::Cpu) else {
        return Ok(());
    };
    let (dense, table) = config.parameter_estimate();
    let needed = 16.0 * dense + 4.0 * table;
    if needed > available as f64 {
        return Err(RunError::config(
            "arch.hidden_size",
            format!(
                "the model (hidden_size {}, {} blocks, about {:.3e} parameters and a puzzle table of {:.3e} values) \
                 needs at least {:.1} GiB for its weights, gradients and optimizer moments, but {:.1} GiB of \
                 memory is available; lower arch.hidden_size, arch.expansion or the layer counts",
                config.hidden_size,
                match config.name {
                    hrm_model::ModelKind::Hrm => config.h_layers + config.l_layers,
                    hrm_model::ModelKind::Trm => config.l_layers,
                },
                dense,
                table,
                needed / GIB,
                available as f64 / GIB
            ),
        ));
    }
    Ok(())
}

/// Refuses, before anything is allocated, a batch of `rows` rows whose activations cannot fit in `available`
/// bytes of main memory (CPU; `None`, or a CUDA device, is not checked), by
/// [`ModelConfig::activation_estimate`] plus the weights. `training` picks a training step's estimate or a
/// forward pass's; `setting` names what sets the rows (`--batch-size`, `eval.batch_size`, ...), and the error
/// gives the most rows that fit.
pub fn check_batch_memory(
    config: &ModelConfig,
    rows: usize,
    training: bool,
    setting: &str,
    device: Device,
    available: Option<u64>,
) -> Result<(), RunError> {
    let Some(available) = available.filter(|_| device == Device::Cpu) else {
        return Ok(());
    };
    let (dense, table) = config.parameter_estimate();
    let weights = 4.0 * (dense + table);
    let per_row = config.activation_estimate(1.0, training);
    let needed = weights + rows as f64 * per_row;
    if needed <= available as f64 {
        return Ok(());
    }
    let fit = ((available as f64 - weights) / per_row).floor().max(0.0);
    let what = match training {
        true => "training step",
        false => "forward pass",
    };
    Err(RunError::config(
        setting,
        format!(
            "{rows} rows per batch: a {what} of this model (sequence {}, hidden size {}) needs at least {:.1} GiB \
             ({:.1} MiB per row plus {:.2} GiB of weights), but {:.1} GiB of memory is available; at most {fit} \
             rows fit, so lower {setting}",
            config.model_seq_len(),
            config.hidden_size,
            needed / GIB,
            per_row / (1u64 << 20) as f64,
            weights / GIB,
            available as f64 / GIB
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_refused_only_beyond_the_memory_with_the_rows_that_fit() {
        let config = ModelConfig::paper(12, 900, 1000);
        let gib = 1u64 << 30;
        let one = config.activation_estimate(1.0, true);
        assert!(one > 0.0 && config.activation_estimate(2.0, true) == 2.0 * one);
        assert!(config.activation_estimate(1.0, false) < one);
        check_batch_memory(&config, 1, true, "--batch-size", Device::Cpu, Some(8 * gib)).unwrap();
        let e = check_batch_memory(
            &config,
            100_000_000,
            false,
            "--batch-size",
            Device::Cpu,
            Some(8 * gib),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--batch-size") && e.contains("100000000 rows") && e.contains("rows fit"),
            "{e}"
        );
        let fit: usize = e
            .split("at most ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(fit > 0);
        check_batch_memory(
            &config,
            fit,
            false,
            "--batch-size",
            Device::Cpu,
            Some(8 * gib),
        )
        .unwrap();
        check_batch_memory(
            &config,
            fit + 1,
            false,
            "--batch-size",
            Device::Cpu,
            Some(8 * gib),
        )
        .unwrap_err();
        // Not checked on CUDA or when the memory is unknown.
        check_batch_memory(&config, 100_000_000, true, "x", Device::Cuda(0), Some(gib)).unwrap();
        check_batch_memory(&config, 100_000_000, true, "x", Device::Cpu, None).unwrap();
    }
}
