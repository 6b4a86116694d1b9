//! `hrm build-data`: build arc1, arc2, sudoku or maze datasets in HRM's on-disk layout.
//! Follows the reference's `dataset/build_{arc,sudoku,maze}_dataset.py`.

use anyhow::{bail, Context, Result};
use clap::builder::TypedValueParser;
use hrm_data::arc::{ArcBuildConfig, ArcSource, SourceRole};
use hrm_data::maze::{MazeBuildConfig, MazeSource};
use hrm_data::sudoku::SudokuBuildConfig;
use hrm_data::trm_arc::{build_trm_arc, TrmArcConfig, TrmSubset};
use hrm_recipe::{DataLayout, Task};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The `which` argument: a task name of [`Task`] (its `FromStr`), listed in `--help` from [`Task::ALL`].
fn task_parser() -> impl TypedValueParser<Value = Task> {
    clap::builder::PossibleValuesParser::new(Task::ALL.map(Task::as_str))
        .try_map(|s| s.parse::<Task>())
}

/// The `--layout` argument: a spelling of [`DataLayout`].
fn layout_parser() -> impl TypedValueParser<Value = DataLayout> {
    clap::builder::PossibleValuesParser::new(DataLayout::ALL.map(DataLayout::as_str))
        .try_map(|s| s.parse::<DataLayout>())
}

/// Arguments of `hrm build-data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset to build (or give --recipe).
    #[arg(required_unless_present = "recipe", value_parser = task_parser())]
    which: Option<Task>,
    /// Take every setting from a recipe's [data] section (a preset name or a .toml file); change them with
    /// `--set data.<key>=<value>` (the flags that set the same values conflict with it).
    #[arg(long, conflicts_with = "which")]
    recipe: Option<String>,
    /// Recipe overrides, `section.key=value` (only with --recipe).
    #[arg(long = "set", requires = "recipe")]
    sets: Vec<String>,
    /// ARC: side of the square canvas (30 = the paper; smaller keeps only tasks that fit).
    #[arg(long, conflicts_with = "recipe")]
    canvas: Option<usize>,
    /// ARC: only ARC-AGI evaluation tasks.
    #[arg(long, conflicts_with = "recipe")]
    evaluation_only: bool,
    /// Keep at most this many tasks (ARC).
    #[arg(long, conflicts_with = "recipe")]
    max_tasks: Option<usize>,
    /// ARC: build from these task sources instead of the task's preset folders (repeatable; read in order).
    /// `PATH`, `train=PATH` (every pair trains) or `test=PATH` (demonstrations train, test pairs go to the test
    /// split). PATH is a folder of task JSON files (and subfolders of them), one task file, or an ARC Prize
    /// `*_challenges.json` file (with its `*_solutions.json` when present; without one, test outputs are hidden
    /// and kept as prediction-only rows). Without a prefix, tasks in folders named `evaluation` and
    /// `*_evaluation*_challenges.json` files are test tasks. Relative paths are taken from the data folder
    /// when they are not found as given. Task ids must be unique across sources.
    #[arg(long = "source", value_name = "SOURCE")]
    sources: Vec<String>,
    /// ARC: the layout to write. `hrm` (default): this project's builder. `trm`: the exact bytes of TRM's
    /// `dataset/build_arc_dataset.py` (plus `test_puzzles.json`), from ARC Prize `*_challenges.json` sources read
    /// as its `--subsets` in the order given, the one marked `test=` as its `--test-set-name`; `--num-aug` and
    /// `--seed` as its flags (seed below 2^32). No other ARC option applies.
    #[arg(long, conflicts_with = "recipe", value_parser = layout_parser())]
    layout: Option<DataLayout>,
    /// The raw data folder (default: $HRM_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The output folder (built in a temporary sibling and renamed at the end).
    #[arg(long)]
    out: PathBuf,
    /// The builder's seed (default: 42 for ARC and Sudoku).
    #[arg(long, conflicts_with = "recipe")]
    seed: Option<u64>,
    /// Augmentations: ARC variants per task, Sudoku shuffles per puzzle, Maze: any value > 0 adds the 8 dihedral copies.
    #[arg(long, conflicts_with = "recipe")]
    num_aug: Option<usize>,
    /// Sudoku: training puzzles drawn from the hard pool.
    #[arg(long, conflicts_with = "recipe")]
    subsample: Option<usize>,
    /// Sudoku: held-out test puzzles.
    #[arg(long, conflicts_with = "recipe")]
    test_size: Option<usize>,
    /// Sudoku: build from the reference CSV files (source,q,a,rating) instead of the tdoku puzzle files:
    /// the training CSV (the test CSV is `--test-csv`).
    #[arg(long, requires = "test_csv")]
    train_csv: Option<PathBuf>,
    /// Sudoku: the reference test CSV (with --train-csv).
    #[arg(long, requires = "train_csv")]
    test_csv: Option<PathBuf>,
    /// Maze: generate this many new training mazes (and as many test mazes) instead of the reference set.
    #[arg(long)]
    generate: Option<usize>,
    /// Worker threads (0 = all cores); the output does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Replace the output folder if it exists (only once the new dataset is complete: a failed or
    /// killed build leaves the old one intact).
    #[arg(long)]
    force: bool,
}

/// The data folder from a flag or `HRM_DATA_DIR`.
pub fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    let dir = match flag {
        Some(d) => d,
        None => match std::env::var_os("HRM_DATA_DIR") {
            Some(d) if d.is_empty() => bail!(
                "HRM_DATA_DIR is set but empty; set it to the folder holding arc-agi-1/, concept-arc/, ... \
                 (or pass --data-dir)"
            ),
            Some(d) => PathBuf::from(d),
            None => bail!("no data folder: pass --data-dir or set HRM_DATA_DIR (the folder holding arc-agi-1/, concept-arc/, ...)"),
        },
    };
    if !dir.is_dir() {
        bail!(
            "data folder {} does not exist or is not a folder",
            dir.display()
        );
    }
    Ok(dir)
}

/// A spinner with elapsed time, for builders that do not report progress themselves (the workspace's one
/// progress helper: plain lines at a steady interval when stderr is redirected).
pub fn spinner(msg: &str) -> ProgressBar {
    hrm_train::progress::spinner(msg, hrm_train::progress::Display::Shown)
}

/// Checks the output folder before a build: an existing one is refused without `--force`, and with it one
/// holding anything but a dataset's files (a run, notes). With `--force` nothing is removed here: every builder writes into a hidden sibling and swaps it in only
/// when the new dataset is complete (`hrm_data::layout::DatasetWriter`), so a failed or killed build
/// leaves the old dataset as it was.
fn prepare_out(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !force {
            bail!(
                "{} already exists; pass --force to replace it (the old dataset stays until the new one \
                 is complete)",
                out.display()
            );
        }
        hrm_data::check_folder_holds_only(out, &hrm_data::layout::DATASET_ENTRIES, "a dataset")?;
    }
    if let Some(parent) = out.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    Ok(())
}

/// Fills the arguments from a recipe's data section.
fn from_recipe(mut args: Args) -> Result<Args> {
    let Some(name) = args.recipe.clone() else {
        return Ok(args);
    };
    let recipe = hrm_recipe::Recipe::load(&name, &args.sets)?;
    let d = &recipe.data;
    args.which = Some(d.task);
    args.seed = Some(d.seed);
    args.num_aug = Some(d.num_aug);
    args.canvas = Some(d.canvas);
    args.evaluation_only = d.eval_tasks_only;
    args.max_tasks = Some(d.max_tasks);
    args.layout = Some(d.layout);
    if !d.sources.is_empty() {
        if !args.sources.is_empty() {
            bail!("--source conflicts with the recipe's data.sources; change them with --set data.sources=[...]");
        }
        args.sources = d.sources.clone();
    }
    if d.task == Task::Sudoku {
        args.subsample = Some(d.subsample);
        if d.test_size != 0 {
            args.test_size = Some(d.test_size);
        }
    }
    Ok(args)
}

/// Refuses, for a build without a recipe, `--set` (it changes a recipe) and every flag that the named task
/// does not read, naming the flag and the task, instead of building as if it had not been given.
fn check_flags_apply(args: &Args) -> Result<()> {
    if args.recipe.is_some() {
        return Ok(());
    }
    if let Some(set) = args.sets.first() {
        bail!(
            "--set {set} changes a recipe's settings and needs --recipe; without a recipe use the flags \
             (--num-aug, --seed, ...; see hrm build-data --help)"
        );
    }
    let Some(task) = args.which else {
        return Ok(());
    };
    let (arc, sudoku, maze) = (
        matches!(task, Task::Arc1 | Task::Arc2),
        task == Task::Sudoku,
        task == Task::Maze,
    );
    let given = [
        ("--canvas", args.canvas.is_some(), arc),
        ("--evaluation-only", args.evaluation_only, arc),
        ("--max-tasks", args.max_tasks.is_some(), arc),
        ("--subsample", args.subsample.is_some(), sudoku),
        ("--test-size", args.test_size.is_some(), sudoku),
        ("--train-csv", args.train_csv.is_some(), sudoku),
        ("--generate", args.generate.is_some(), maze),
        (
            "--seed",
            args.seed.is_some(),
            !maze || args.generate.is_some(),
        ),
    ];
    if let Some((flag, _, _)) = given.iter().find(|(_, g, applies)| *g && !applies) {
        let why = match *flag {
            "--seed" => "the reference mazes are read as they are; --seed applies with --generate"
                .to_string(),
            _ => format!("{task} has no such setting"),
        };
        bail!("{flag} does not apply to {task}: {why} (see hrm build-data --help for each task's flags)");
    }
    Ok(())
}

/// Runs `hrm build-data`.
pub fn run(args: Args) -> Result<()> {
    check_flags_apply(&args)?;
    let args = from_recipe(args)?;
    let task = args
        .which
        .context("name a dataset (arc1, arc2, sudoku, maze) or give --recipe")?;
    if args.layout == Some(DataLayout::Trm) {
        check_trm_args(&args, task)?;
    }
    if !args.sources.is_empty() && !matches!(task, Task::Arc1 | Task::Arc2) {
        bail!("--source is for ARC builds (arc1, arc2); {task} does not read task sources");
    }
    for spec in &args.sources {
        check_source_spec(spec)?;
    }
    let data = if args.train_csv.is_some() {
        PathBuf::new()
    } else if !args.sources.is_empty() && args.data_dir.is_none() {
        // Sources given explicitly need no data folder; HRM_DATA_DIR (when set) resolves relative ones.
        std::env::var_os("HRM_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_default()
    } else {
        data_dir(args.data_dir.clone())?
    };
    prepare_out(&args.out, args.force)?;
    let start = Instant::now();
    let (summary, settings) = match task {
        Task::Arc1 | Task::Arc2 if args.layout == Some(DataLayout::Trm) => build_trm(&args, &data)?,
        Task::Arc1 | Task::Arc2 => build_arc(&args, task, &data)?,
        Task::Sudoku if args.train_csv.is_some() => build_sudoku_csv(&args)?,
        Task::Sudoku => build_sudoku(&args, &data)?,
        Task::Maze => build_maze(&args, &data)?,
    };
    let mut record = serde_json::json!({ "task": task.as_str() });
    if let (Some(r), serde_json::Value::Object(more)) = (record.as_object_mut(), settings) {
        r.extend(more);
    }
    hrm_data::layout::write_build_record(&args.out, &record)?;
    outln!("{summary}");
    outln!(
        "built {} in {:.1} s",
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs `build` under a spinner showing `msg`; `what` names the build in its error.
fn with_spinner<T, E>(msg: &str, what: &str, build: impl FnOnce() -> Result<T, E>) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let pb = spinner(msg);
    let result = build();
    pb.finish_and_clear();
    result.with_context(|| format!("{what} build failed"))
}

/// Builds ARC-1 or ARC-2; returns the summary line.
fn build_arc(args: &Args, task: Task, data: &Path) -> Result<(String, serde_json::Value)> {
    let mut cfg = ArcBuildConfig::for_task(task, data).context("not an ARC task")?;
    if !args.sources.is_empty() {
        cfg.sources = args
            .sources
            .iter()
            .map(|s| source(s, data))
            .collect::<Result<_>>()?;
    }
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.num_aug = args.num_aug.unwrap_or(cfg.num_aug);
    cfg.canvas = args.canvas.unwrap_or(cfg.canvas);
    cfg.threads = args.threads;
    cfg.evaluation_only = args.evaluation_only;
    cfg.max_tasks = args.max_tasks.unwrap_or(0);
    let msg = format!(
        "building {task} with {} augmentations on a {c}x{c} canvas",
        cfg.num_aug,
        c = cfg.canvas
    );
    let stats = with_spinner(&msg, "ARC", || hrm_data::build_arc(&cfg, &args.out))?;
    let settings = serde_json::json!({
        "layout": "hrm", "num_aug": cfg.num_aug, "seed": cfg.seed, "canvas": cfg.canvas,
        "eval_tasks_only": cfg.evaluation_only, "max_tasks": cfg.max_tasks, "sources": args.sources,
    });
    Ok((stats.to_string(), settings))
}

/// Refuses the options TRM's builder does not have, naming the flag.
fn check_trm_args(args: &Args, task: Task) -> Result<()> {
    if !matches!(task, Task::Arc1 | Task::Arc2) {
        bail!("--layout trm is for ARC builds (arc1, arc2), not {task}");
    }
    let unsupported = [
        (
            "--canvas",
            args.canvas
                .is_some_and(|c| c != hrm_data::trm_arc::ARC_CANVAS),
        ),
        ("--evaluation-only", args.evaluation_only),
        ("--max-tasks", args.max_tasks.is_some_and(|n| n != 0)),
        ("--subsample", args.subsample.is_some()),
        ("--test-size", args.test_size.is_some()),
        ("--train-csv", args.train_csv.is_some()),
        ("--generate", args.generate.is_some()),
    ];
    if let Some((flag, _)) = unsupported.iter().find(|(_, given)| *given) {
        bail!(
            "{flag} does not apply with --layout trm: TRM's builder has no such option (30x30 canvas, every task of \
             every source)"
        );
    }
    if args.sources.is_empty() {
        bail!(
            "--layout trm needs --source files: ARC Prize `<prefix>_<subset>_challenges.json` files in TRM's \
             --subsets order, the test set marked `test=`"
        );
    }
    if let Some(seed) = args.seed.filter(|&s| s > u64::from(u32::MAX)) {
        bail!("--seed {seed}: --layout trm seeds numpy's generator (np.random.seed), which takes 0..=2^32-1");
    }
    Ok(())
}

/// Builds an ARC dataset in TRM's layout; returns the summary line.
fn build_trm(args: &Args, data: &Path) -> Result<(String, serde_json::Value)> {
    let subsets: Vec<TrmSubset> = args
        .sources
        .iter()
        .map(|s| {
            let src = source(s, data)?;
            Ok(TrmSubset {
                challenges: src.path,
                test: src.role == Some(SourceRole::Test),
            })
        })
        .collect::<Result<_>>()?;
    if !subsets.iter().any(|s| s.test) {
        bail!(
            "--layout trm needs the test set among the --source files, marked `test=` (TRM's --test-set-name), \
             e.g. --source test=<prefix>_evaluation_challenges.json"
        );
    }
    let cfg = TrmArcConfig {
        subsets,
        num_aug: args.num_aug.unwrap_or(1000),
        seed: u32::try_from(args.seed.unwrap_or(42))
            .context("--seed must be below 2^32 with --layout trm")?,
    };
    let msg = format!(
        "building TRM's ARC layout with {} augmentations",
        cfg.num_aug
    );
    let stats = with_spinner(&msg, "TRM-layout ARC", || build_trm_arc(&cfg, &args.out))?;
    let settings = serde_json::json!({
        "layout": "trm", "num_aug": cfg.num_aug, "seed": cfg.seed, "sources": args.sources,
    });
    Ok((stats.to_string(), settings))
}

/// Refuses an empty `--source` and an unknown `PREFIX=` (one that is not `train=` or `test=`, when no file of
/// that whole name exists), saying what a source is.
fn check_source_spec(spec: &str) -> Result<()> {
    if spec.trim().is_empty() {
        bail!(
            "--source '' is empty: give a folder of task files, a task file or a *_challenges.json file, \
             optionally prefixed train= or test="
        );
    }
    if let Some((prefix, path)) = spec.split_once('=') {
        let known = matches!(prefix, "train" | "test");
        if !known && !prefix.contains('/') && !Path::new(spec).exists() {
            bail!(
                "--source {spec}: unknown prefix `{prefix}=`; the prefixes are train= (every pair trains) and \
                 test= (test pairs go to the test split)"
            );
        }
        if known && path.trim().is_empty() {
            bail!("--source {spec}: no path after `{prefix}=`");
        }
    }
    Ok(())
}

/// A `--source` value: `[train=|test=]PATH`, PATH as given when it exists, else relative to the data folder. A
/// path found in neither place is refused, naming it as typed and every path tried.
fn source(spec: &str, data: &Path) -> Result<ArcSource> {
    let as_given = ArcSource::parse(spec, None);
    if as_given.path.exists() {
        return Ok(as_given);
    }
    let mut tried = vec![match std::env::current_dir() {
        Ok(cwd) if as_given.path.is_relative() => format!(
            "{} (from the current folder {})",
            as_given.path.display(),
            cwd.display()
        ),
        _ => as_given.path.display().to_string(),
    }];
    if !data.as_os_str().is_empty() && as_given.path.is_relative() {
        let in_data = ArcSource::parse(spec, Some(data));
        if in_data.path.exists() {
            return Ok(in_data);
        }
        tried.push(format!("{} (from the data folder)", in_data.path.display()));
    }
    let hint = match (data.as_os_str().is_empty(), as_given.path.is_relative()) {
        (true, true) => {
            "; give --data-dir (or set HRM_DATA_DIR) to read it from the raw-data folder"
        }
        _ => "",
    };
    bail!(
        "--source {spec}: no such file or folder; tried {}{hint}",
        tried.join(" and ")
    )
}

/// Builds Sudoku from the reference CSV files; returns the summary line.
fn build_sudoku_csv(args: &Args) -> Result<(String, serde_json::Value)> {
    let (train_csv, test_csv) = (
        args.train_csv.clone().unwrap_or_default(),
        args.test_csv.clone().unwrap_or_default(),
    );
    let msg = "reading the reference CSV files and building";
    let (subsample, num_aug) = (args.subsample.unwrap_or(1000), args.num_aug.unwrap_or(1000));
    let (test_size, seed) = (args.test_size.unwrap_or(0), args.seed.unwrap_or(0));
    let stats = with_spinner(msg, "Sudoku CSV", || {
        hrm_data::sudoku::build_sudoku_csv(
            &train_csv, &test_csv, subsample, num_aug, test_size, seed, &args.out,
        )
    })?;
    let settings = serde_json::json!({
        "num_aug": num_aug, "seed": seed, "subsample": subsample, "test_size": test_size,
    });
    let summary = format!(
        "train {} groups ({} puzzles) | test {}",
        stats.train_groups, stats.train_puzzles, stats.test_puzzles
    );
    Ok((summary, settings))
}

/// Builds Sudoku from the tdoku puzzle files; returns the summary lines.
fn build_sudoku(args: &Args, data: &Path) -> Result<(String, serde_json::Value)> {
    let mut cfg = SudokuBuildConfig::extreme_1k(data);
    cfg.seed = args.seed.unwrap_or(cfg.seed);
    cfg.num_aug = args.num_aug.unwrap_or(cfg.num_aug);
    cfg.subsample = args.subsample.unwrap_or(cfg.subsample);
    cfg.test_size = args.test_size.unwrap_or(cfg.test_size);
    cfg.threads = args.threads;
    let msg = "solving and rating puzzles, then building";
    let stats = with_spinner(msg, "Sudoku", || {
        hrm_data::sudoku::build_sudoku(&cfg, &args.out)
    })?;
    let mut summary = String::new();
    for (file, n) in &stats.read {
        summary += &format!("read {n} puzzles from {file}\n");
    }
    summary += &format!(
        "rejected: {} duplicates, {} with no solution, {} with several solutions; {} too easy | hard pool {} \
         | train {} groups ({} puzzles) | test {}",
        stats.duplicates,
        stats.no_solution,
        stats.multi_solution,
        stats.too_easy,
        stats.hard_pool,
        stats.train_groups,
        stats.train_puzzles,
        stats.test_puzzles
    );
    let settings = serde_json::json!({
        "num_aug": cfg.num_aug, "seed": cfg.seed, "subsample": cfg.subsample, "test_size": cfg.test_size,
    });
    Ok((summary, settings))
}

/// Builds Maze from the reference set or from generated mazes; returns the summary line.
fn build_maze(args: &Args, data: &Path) -> Result<(String, serde_json::Value)> {
    let source = match args.generate {
        None => MazeSource::Reference(data.join("maze-30x30-hard-1k")),
        Some(n) => MazeSource::Generate {
            train: n,
            test: n,
            min_path_cells: hrm_data::maze::HARD_MIN_PATH_CELLS,
            extra_openings: 0.05,
            seed: args.seed.unwrap_or(0),
        },
    };
    let cfg = MazeBuildConfig {
        source,
        dihedral_aug: args.num_aug.unwrap_or(0) > 0,
    };
    let stats = with_spinner("building mazes", "maze", || {
        hrm_data::maze::build_maze(&cfg, &args.out)
    })?;
    let settings = serde_json::json!({ "num_aug": args.num_aug.unwrap_or(0) });
    Ok((stats.to_string(), settings))
}
