//! `hrm info`: libtorch, CUDA and device facts (JSON with `--json`, for scripts such as `cargo xtask`).

use anyhow::Result;

/// Arguments of `hrm info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `hrm info`.
pub fn run(args: Args) -> Result<()> {
    let cuda = tch::Cuda::is_available();
    let devices = if cuda { tch::Cuda::device_count() } else { 0 };
    let cudart = tch::utils::has_cudart();
    let threads = tch::get_num_threads();
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "cuda_available": cuda,
                "cuda_devices": devices,
                "cudart_linked": cudart,
                "torch_threads": threads,
                "libtorch": crate_libtorch_version(),
                "default_device": if cuda { "cuda:0" } else { "cpu" },
                "default_dtype": if cuda { "bfloat16" } else { "float32" },
            })
        );
    } else {
        outln!("libtorch        {}", crate_libtorch_version());
        outln!(
            "cuda runtime    {}",
            if cudart { "linked" } else { "NOT linked" }
        );
        outln!("cuda available  {cuda} ({devices} device(s))");
        outln!("cpu threads     {threads}");
        outln!(
            "default device  {}",
            if cuda { "cuda:0 (bf16)" } else { "cpu (f32)" }
        );
    }
    Ok(())
}

/// The libtorch version tch 0.24 is built against (`hrm_arch::LIBTORCH_VERSION`, through hrm-train).
pub fn crate_libtorch_version() -> &'static str {
    hrm_train::run::LIBTORCH_VERSION
}
