//! `cargo xtask reproduce-{arc1,arc2,sudoku,maze}`: set up, find the data, build, train, predict, evaluate and
//! report, in one command that continues where it stopped when rerun.

use anyhow::{bail, Context, Result};
use hrm_grid::Task;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The default recipes: (model, task, with CUDA (the papers' settings), on CPU (sized for 2 cores; it proves the
/// pipeline, not the numbers)).
const DEFAULT_RECIPES: [(Arch, Task, &str, &str); 8] = [
    (Arch::Hrm, Task::Arc1, "arc1", "arc1-cpu"),
    (Arch::Hrm, Task::Arc2, "arc2", "arc2-cpu"),
    (Arch::Hrm, Task::Sudoku, "sudoku-extreme-1k", "sudoku-cpu"),
    (Arch::Hrm, Task::Maze, "maze-30x30-hard-1k", "maze-cpu"),
    (Arch::Trm, Task::Arc1, "trm-arc1", "trm-arc1-cpu"),
    (Arch::Trm, Task::Arc2, "trm-arc2", "trm-arc2-cpu"),
    (Arch::Trm, Task::Sudoku, "trm-sudoku-mlp", "trm-sudoku-cpu"),
    (Arch::Trm, Task::Maze, "trm-maze", "trm-maze-cpu"),
];

/// The (GPU, CPU) default recipes of a task and model.
fn default_recipes(task: Task, arch: Arch) -> (&'static str, &'static str) {
    DEFAULT_RECIPES
        .iter()
        .find(|(a, t, _, _)| *a == arch && *t == task)
        .map(|(_, _, gpu, cpu)| (*gpu, *cpu))
        .unwrap_or(("arc1", "arc1-cpu"))
}

/// Which model the default recipes train.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// The Hierarchical Reasoning Model (the paper's recipes).
    #[default]
    Hrm,
    /// The Tiny Recursive Model (the `trm-*` recipes).
    Trm,
}

/// The raw-data folders the task's builder reads, relative to the data folder.
pub fn raw_folders(task: Task) -> &'static [&'static str] {
    match task {
        Task::Arc1 => &["arc-agi-1", "concept-arc"],
        Task::Arc2 => &["arc-agi-2"],
        Task::Sudoku => &["sudoku-sources"],
        Task::Maze => &["maze-30x30-hard-1k"],
    }
}

/// Where to train: `auto` asks `hrm info` whether CUDA is available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// CUDA when `hrm info` finds it, else CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA device.
    Cuda,
}

/// The options of a reproduce verb.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// The raw-data folder (default: `$HRM_DATA_DIR`, `../shared/datasets`, `datasets/raw`).
    #[arg(long, visible_alias = "data-dir", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The output folder (default: `runs/reproduce-<task>-<recipe>`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The recipe (default: the paper's recipe with CUDA, the `*-cpu` one without).
    #[arg(long, value_name = "NAME")]
    pub recipe: Option<String>,
    /// A recipe override `section.key=value`, passed to build-data and train (repeatable).
    #[arg(long = "set", value_name = "K=V")]
    pub sets: Vec<String>,
    /// Where to train.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    pub device: Device,
    /// The model of the default recipe: `trm` picks `trm-<task>` with CUDA and `trm-<task>-cpu` without.
    #[arg(long, value_enum, default_value_t = Arch::Hrm, conflicts_with = "recipe")]
    pub arch: Arch,
    /// Print the plan; execute nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Use (and build) the debug `hrm` binary instead of the release one.
    #[arg(long)]
    pub debug_build: bool,
    /// Do not build `hrm`; use the binary already in `target/`.
    #[arg(long)]
    pub no_build: bool,
}

/// Finds the raw data: `--data`, `$HRM_DATA_DIR`, `../shared/datasets` beside the clone, or `datasets/raw`
/// (fetched there where the network allows).
fn find_data(task: Task, flag: Option<PathBuf>, dry_run: bool) -> Result<PathBuf> {
    let root = crate::repo_root();
    let raw = root.join("datasets").join("raw");
    let has_all = |d: &Path| raw_folders(task).iter().all(|n| d.join(n).is_dir());
    let candidates = [
        flag,
        std::env::var_os("HRM_DATA_DIR").map(PathBuf::from),
        Some(root.join("..").join("shared").join("datasets")),
        Some(raw.clone()),
    ];
    let mut tried = Vec::new();
    for d in candidates.into_iter().flatten() {
        if has_all(&d) {
            return Ok(d.canonicalize().unwrap_or(d));
        }
        tried.push(d.display().to_string());
    }
    if !dry_run {
        crate::fetch::fetch(task, &raw).with_context(|| {
            format!(
                "no data for {task} (needs {}) in any of: {}",
                raw_folders(task).join(", "),
                tried.join(", ")
            )
        })?;
    }
    Ok(raw)
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
    eprintln!(
        "
==> {what}
    {}",
        show(cmd)
    );
    crate::run_step(cmd, what)
}

fn cuda_available(hrm: &Path) -> Result<bool> {
    let info = crate::json_output(
        Command::new(hrm).args(["info", "--json"]),
        "`hrm info --json`",
    )?;
    Ok(info["cuda_available"].as_bool().unwrap_or(false))
}

/// Step 1: libtorch and the `hrm` binary (printed as the plan's first two steps on a dry run).
fn prepare_binary(task: Task, o: &Options, hrm: &Path) -> Result<()> {
    let mut build = crate::cargo();
    build.args(["build", "-p", "hrm-cli"]);
    if !o.debug_build {
        build.arg("--release");
    }
    if o.dry_run {
        println!("plan for reproduce-{task} (dry run: nothing is executed)");
        println!(
            "  1. cargo xtask setup  (torch=={} into the cached venv, linked as .libtorch)",
            hrm_arch::LIBTORCH_VERSION
        );
        println!("  2. {}", show(&build));
        return Ok(());
    }
    crate::setup::ensure_libtorch()?;
    if !o.no_build {
        return run(&mut build, "building the hrm binary");
    }
    if !hrm.is_file() {
        bail!("--no-build was given but {} does not exist", hrm.display());
    }
    Ok(())
}

/// Step 2: the recipe, the paper's with CUDA, the CPU one (said so) without, unless `--recipe` names one.
fn choose_recipe(task: Task, arch: Arch, flag: Option<&str>, cuda: bool) -> String {
    let (gpu, cpu) = default_recipes(task, arch);
    if let Some(r) = flag {
        return r.to_string();
    }
    if !cuda {
        println!(
            "\nNo CUDA device: running the CPU recipe `{cpu}` instead of the paper's `{gpu}`.\n\
             It proves the pipeline (build, train, predict, vote, report) in about 30 minutes on 2 cores;\n\
             it does not reproduce the paper's numbers. Use a CUDA machine for `{gpu}`."
        );
    }
    if cuda { gpu } else { cpu }.to_string()
}

/// Everything the stages need: the binary, the choices made and the folders.
struct Plan {
    task: Task,
    hrm: PathBuf,
    recipe: String,
    cuda: bool,
    sets: Vec<String>,
    data: PathBuf,
    out: PathBuf,
}

/// One stage: what it does, its command, and whether its output is already complete (then it is skipped).
struct Stage {
    what: &'static str,
    cmd: Command,
    done: bool,
}

impl Plan {
    fn dir(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    fn hrm(&self, verb: &str) -> Command {
        let mut cmd = Command::new(&self.hrm);
        cmd.arg(verb);
        cmd
    }

    fn with_sets(&self, cmd: &mut Command) {
        for s in &self.sets {
            cmd.args(["--set", s]);
        }
    }

    fn build_data(&self) -> Stage {
        let mut cmd = self.hrm("build-data");
        cmd.args(["--recipe", &self.recipe])
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--out")
            .arg(self.dir("dataset"));
        self.with_sets(&mut cmd);
        let done = self
            .dir("dataset")
            .join("test")
            .join("dataset.json")
            .is_file();
        Stage {
            what: "build the dataset",
            cmd,
            done,
        }
    }

    /// Training always runs: `--resume` continues an interrupted run and does nothing for a finished one.
    fn train(&self) -> Stage {
        let mut cmd = self.hrm("train");
        cmd.arg(&self.recipe)
            .arg("--dataset")
            .arg(self.dir("dataset"));
        let run = self.dir("run");
        if run.join("checkpoints").join("latest").exists() {
            cmd.arg("--resume").arg(&run);
        } else {
            cmd.arg("--run").arg(&run);
            self.with_sets(&mut cmd);
        }
        cmd.args(["--device", if self.cuda { "cuda" } else { "cpu" }]);
        Stage {
            what: "train",
            cmd,
            done: false,
        }
    }

    fn predict(&self) -> Stage {
        let mut cmd = self.hrm("predict");
        cmd.arg("--run")
            .arg(self.dir("run"))
            .arg("--out")
            .arg(self.dir("predictions"));
        Stage {
            what: "predict the test split",
            cmd,
            done: false,
        }
    }

    fn report(&self) -> Stage {
        let cpu_note = " This CPU run proves the pipeline (build, train, predict, vote, report); it is far too \
                        small to reach the paper's numbers, which need the paper recipe on GPUs.";
        let note = format!(
            "Made by `cargo xtask reproduce-{}` with recipe `{}` on {}.{}",
            self.task,
            self.recipe,
            if self.cuda { "CUDA" } else { "CPU" },
            if self.cuda { "" } else { cpu_note }
        );
        let mut cmd = self.hrm("report");
        cmd.arg(self.dir("predictions"))
            .arg("--dataset")
            .arg(self.dir("dataset"))
            .arg("--out")
            .arg(self.dir("report"))
            .arg("--metrics")
            .arg(self.dir("run").join("metrics.jsonl"))
            .arg("--note")
            .arg(&note);
        Stage {
            what: "evaluate and report",
            cmd,
            done: false,
        }
    }

    fn stages(&self) -> Vec<Stage> {
        vec![
            self.build_data(),
            self.train(),
            self.predict(),
            self.report(),
        ]
    }
}

fn print_plan(plan: &Plan, stages: &[Stage]) {
    for (i, s) in stages.iter().enumerate() {
        let skipped = if s.done { " (done; skipped)" } else { "" };
        println!("  {}. {}{skipped}\n     {}", i + 3, s.what, show(&s.cmd));
    }
    println!(
        "  data folder: {}\n  output: {}",
        plan.data.display(),
        plan.out.display()
    );
}

/// `cargo xtask reproduce-<task> [options]`.
pub fn reproduce(task: Task, o: &Options) -> Result<()> {
    let started = Instant::now();
    let hrm = hrm_binary(o.debug_build);
    prepare_binary(task, o, &hrm)?;
    let cuda = match o.device {
        Device::Cpu => false,
        Device::Cuda => true,
        Device::Auto => !o.dry_run && cuda_available(&hrm)?,
    };
    let recipe = choose_recipe(task, o.arch, o.recipe.as_deref(), cuda);
    let out = o.out.clone().unwrap_or_else(|| {
        crate::repo_root()
            .join("runs")
            .join(format!("reproduce-{task}-{recipe}"))
    });
    let data = find_data(task, o.data.clone(), o.dry_run)?;
    let plan = Plan {
        task,
        hrm,
        recipe,
        cuda,
        sets: o.sets.clone(),
        data,
        out,
    };
    let stages = plan.stages();
    if o.dry_run {
        print_plan(&plan, &stages);
        return Ok(());
    }
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("creating {}", plan.out.display()))?;
    for Stage {
        what,
        mut cmd,
        done,
    } in stages
    {
        if done {
            eprintln!("\n==> {what}: already done, skipped");
            continue;
        }
        run(&mut cmd, what)?;
    }
    let report = plan.dir("report");
    println!(
        "\nreproduce-{task} finished in {:.1} min\n  report: {}\n  page:   {}",
        started.elapsed().as_secs_f64() / 60.0,
        report.join("report.md").display(),
        report.join("report.html").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_recipe_is_a_preset_of_its_task_and_model() {
        for task in [Task::Arc1, Task::Arc2, Task::Sudoku, Task::Maze] {
            for (arch, kind) in [
                (Arch::Hrm, hrm_arch::ModelKind::Hrm),
                (Arch::Trm, hrm_arch::ModelKind::Trm),
            ] {
                let (gpu, cpu) = default_recipes(task, arch);
                for name in [gpu, cpu] {
                    let r = hrm_recipe::Recipe::load(name, &[]).expect(name);
                    assert_eq!(r.data.task, task, "{name}");
                    assert_eq!(r.arch.name, kind, "{name}");
                }
            }
        }
    }
}
