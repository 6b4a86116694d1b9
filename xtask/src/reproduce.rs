//! `cargo xtask reproduce-{arc1,arc2,sudoku,maze}`: set up, find the data, build, train, predict, evaluate and
//! report, in one command that continues where it stopped when rerun.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A task that can be reproduced end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// ARC-AGI-1 with ConceptARC.
    Arc1,
    /// ARC-AGI-2.
    Arc2,
    /// Sudoku-Extreme-style 1k.
    Sudoku,
    /// Maze-Hard 30x30.
    Maze,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Arc1 => "arc1",
            Task::Arc2 => "arc2",
            Task::Sudoku => "sudoku",
            Task::Maze => "maze",
        }
    }
    /// (recipe with CUDA, recipe on CPU).
    fn recipes(self) -> (&'static str, &'static str) {
        match self {
            Task::Arc1 => ("arc1", "arc1-cpu"),
            Task::Arc2 => ("arc2", "arc2-cpu"),
            Task::Sudoku => ("sudoku-extreme-1k", "sudoku-cpu"),
            Task::Maze => ("maze-30x30-hard-1k", "maze-cpu"),
        }
    }
    /// The raw-data folders the builder reads, relative to the data folder.
    fn needs(self) -> &'static [&'static str] {
        match self {
            Task::Arc1 => &["arc-agi-1", "concept-arc"],
            Task::Arc2 => &["arc-agi-2"],
            Task::Sudoku => &["sudoku-sources"],
            Task::Maze => &["maze-30x30-hard-1k"],
        }
    }
}

/// Parsed options of a reproduce verb.
#[derive(Debug, Clone)]
struct Options {
    data: Option<PathBuf>,
    out: Option<PathBuf>,
    recipe: Option<String>,
    sets: Vec<String>,
    dry_run: bool,
    device: String,
    debug_build: bool,
    no_build: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        data: None,
        out: None,
        recipe: None,
        sets: Vec::new(),
        dry_run: false,
        device: "auto".into(),
        debug_build: false,
        no_build: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| -> Result<String> {
            it.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value"))
        };
        match a.as_str() {
            "--data" | "--data-dir" => o.data = Some(PathBuf::from(value(a)?)),
            "--out" => o.out = Some(PathBuf::from(value(a)?)),
            "--recipe" => o.recipe = Some(value(a)?),
            "--set" => o.sets.push(value(a)?),
            "--device" => o.device = value(a)?,
            "--dry-run" => o.dry_run = true,
            "--debug-build" => o.debug_build = true,
            "--no-build" => o.no_build = true,
            other => bail!(
                "unknown option `{other}`\n\noptions: --data DIR  --out DIR  --recipe NAME  --set k=v  --device cpu|cuda|auto  --dry-run  --debug-build  --no-build"
            ),
        }
    }
    Ok(o)
}

/// Finds the raw data: `--data`, `$HRM_DATA_DIR`, `../shared/datasets` beside the clone, or `datasets/raw`
/// (fetched there where the network allows).
fn find_data(task: Task, flag: Option<PathBuf>, dry_run: bool) -> Result<PathBuf> {
    let root = crate::repo_root();
    let has_all = |d: &Path| task.needs().iter().all(|n| d.join(n).is_dir());
    let mut tried = Vec::new();
    let candidates: Vec<PathBuf> = [
        flag,
        std::env::var_os("HRM_DATA_DIR").map(PathBuf::from),
        Some(root.join("..").join("shared").join("datasets")),
        Some(root.join("datasets").join("raw")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for d in candidates {
        if has_all(&d) {
            return Ok(d.canonicalize().unwrap_or(d));
        }
        tried.push(d.display().to_string());
    }
    if dry_run {
        return Ok(root.join("datasets").join("raw"));
    }
    crate::fetch::fetch(task.name(), &root.join("datasets").join("raw")).with_context(|| {
        format!(
            "no data for {} (needs {}) in any of: {}",
            task.name(),
            task.needs().join(", "),
            tried.join(", ")
        )
    })?;
    Ok(root.join("datasets").join("raw"))
}

fn hrm_binary(debug: bool) -> PathBuf {
    let profile = if debug { "debug" } else { "release" };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target"));
    target.join(profile).join("hrm")
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().to_string();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    eprintln!("\n==> {what}\n    {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn cuda_available(hrm: &Path) -> Result<bool> {
    let out = Command::new(hrm)
        .args(["info", "--json"])
        .output()
        .context("running `hrm info --json`")?;
    if !out.status.success() {
        bail!(
            "`hrm info` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing `hrm info --json`")?;
    Ok(v["cuda_available"].as_bool().unwrap_or(false))
}

/// `cargo xtask reproduce-<task> [options]`.
pub fn reproduce(task: Task, args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let started = Instant::now();
    let root = crate::repo_root();
    let hrm = hrm_binary(o.debug_build);

    // 1. libtorch and the hrm binary.
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(&root).args(["build", "-p", "hrm-cli"]);
    if !o.debug_build {
        build.arg("--release");
    }
    if o.dry_run {
        println!(
            "plan for reproduce-{} (dry run: nothing is executed)",
            task.name()
        );
        println!(
            "  1. cargo xtask setup  (torch=={} into the cached venv, linked as .libtorch)",
            crate::setup::TORCH_VERSION
        );
        println!("  2. {}", show(&build));
    } else {
        crate::setup::ensure_libtorch()?;
        if o.no_build {
            if !hrm.is_file() {
                bail!("--no-build was given but {} does not exist", hrm.display());
            }
        } else {
            run(&mut build, "building the hrm binary")?;
        }
    }

    // 2. Device and recipe.
    let cuda = match o.device.as_str() {
        "cpu" => false,
        "cuda" => true,
        _ => !o.dry_run && cuda_available(&hrm)?,
    };
    let (gpu_recipe, cpu_recipe) = task.recipes();
    let recipe = o
        .recipe
        .clone()
        .unwrap_or_else(|| if cuda { gpu_recipe } else { cpu_recipe }.to_string());
    if !cuda && o.recipe.is_none() {
        println!(
            "\nNo CUDA device: running the CPU recipe `{cpu_recipe}` instead of the paper's `{gpu_recipe}`.\n\
             It proves the pipeline (build, train, predict, vote, report) in about 30 minutes on 2 cores;\n\
             it does not reproduce the paper's numbers. Use a CUDA machine for `{gpu_recipe}`."
        );
    }

    // 3. Folders.
    let out = o.out.clone().unwrap_or_else(|| {
        root.join("runs")
            .join(format!("reproduce-{}-{recipe}", task.name()))
    });
    let run_dir = out.join("run");
    let dataset_dir = out.join("dataset");
    let predictions = out.join("predictions");
    let report = out.join("report");
    let data = find_data(task, o.data.clone(), o.dry_run)?;

    // 4. The stages; each is skipped when its output is complete, so a rerun continues.
    let mut stages: Vec<(String, Command, bool)> = Vec::new();
    let mut cmd = Command::new(&hrm);
    cmd.args(["build-data", "--recipe", &recipe])
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&dataset_dir);
    for s in &o.sets {
        cmd.args(["--set", s]);
    }
    let built = dataset_dir.join("test").join("dataset.json").is_file();
    stages.push(("build the dataset".into(), cmd, built));

    let mut cmd = Command::new(&hrm);
    cmd.args(["train", &recipe])
        .arg("--dataset")
        .arg(&dataset_dir);
    if run_dir.join("checkpoints").join("latest").exists() {
        cmd.arg("--resume").arg(&run_dir);
    } else {
        cmd.arg("--run").arg(&run_dir);
        for s in &o.sets {
            cmd.args(["--set", s]);
        }
    }
    cmd.args(["--device", if cuda { "cuda" } else { "cpu" }]);
    // Training always runs: `--resume` continues an interrupted run and does nothing for a finished one.
    stages.push(("train".into(), cmd, false));

    let mut cmd = Command::new(&hrm);
    cmd.arg("predict")
        .arg("--run")
        .arg(&run_dir)
        .arg("--out")
        .arg(&predictions);
    stages.push(("predict the test split".into(), cmd, false));

    let note = format!(
        "Made by `cargo xtask reproduce-{}` with recipe `{recipe}` on {}.{}",
        task.name(),
        if cuda { "CUDA" } else { "CPU" },
        if cuda {
            ""
        } else {
            " This CPU run proves the pipeline (build, train, predict, vote, report); it is far too small to reach the paper's numbers, which need the paper recipe on GPUs."
        }
    );
    let mut cmd = Command::new(&hrm);
    cmd.arg("report")
        .arg(&predictions)
        .arg("--dataset")
        .arg(&dataset_dir)
        .arg("--out")
        .arg(&report)
        .arg("--metrics")
        .arg(run_dir.join("metrics.jsonl"))
        .arg("--note")
        .arg(&note);
    stages.push(("evaluate and report".into(), cmd, false));

    if o.dry_run {
        for (i, (what, cmd, done)) in stages.iter().enumerate() {
            println!(
                "  {}. {what}{}\n     {}",
                i + 3,
                if *done { " (done; skipped)" } else { "" },
                show(cmd)
            );
        }
        println!(
            "  data folder: {}\n  output: {}",
            data.display(),
            out.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (what, mut cmd, done) in stages {
        if done {
            eprintln!("\n==> {what}: already done, skipped");
            continue;
        }
        run(&mut cmd, &what)?;
    }
    println!(
        "\nreproduce-{} finished in {:.1} min\n  report: {}\n  page:   {}",
        task.name(),
        started.elapsed().as_secs_f64() / 60.0,
        report.join("report.md").display(),
        report.join("report.html").display()
    );
    Ok(())
}
