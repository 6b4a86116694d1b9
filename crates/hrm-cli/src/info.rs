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
        println!(
            "{}",
            serde_json::json!({
                "cuda_available": cuda,
                "cuda_devices": devices,
                "cudart_linked": cudart,
                "torch_threads": threads,
                "libtorch": crate_libtorch_version(),
            })
        );
    } else {
        println!("libtorch        {}", crate_libtorch_version());
        println!(
            "cuda runtime    {}",
            if cudart { "linked" } else { "NOT linked" }
        );
        println!("cuda available  {cuda} ({devices} device(s))");
        println!("cpu threads     {threads}");
        println!(
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
