//! `hrm solve`: answers ARC tasks that were never in a run's training build. Each new task gets its augmented
//! variants (the builder of spec 1.2-1.4), fresh puzzle-embedding rows fitted by sign-SGD with the trained network
//! frozen (`train.freeze_weights`), then every variant of every test input is predicted, de-augmented and voted on
//! (spec 8.2, trm-spec 5) into a `submission.json`.
//! The references only evaluate tasks of their training build; this follows their parts: `pretrain.py` (the
//! step), `models/sparse_embedding.py` (sign-SGD), `evaluate.py` and TRM's `evaluators/arc.py` (voting).
//!
//! The output folder holds `dataset/` (the build of the new tasks), `predictions/`, `report/` (`hrm report`'s
//! files), `submission.json` and `solve.json` (per task: where it came from, what happened, the fit, pass@1/2
//! when the outputs are known). It is written beside its destination and swapped in only when complete; a solve
//! in which no task could be answered fails, naming each task's problem, and writes nothing. Fitted tasks are
//! kept beside it while it runs (`Progress`), so a rerun after Ctrl-C continues.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hrm_data::arc::{build_arc_tasks, fits_canvas, ArcBuildConfig, ArcSource, SourceRole};
use hrm_data::sources::{is_challenges_file, read_combined, solutions_beside, source_files};
use hrm_data::sources::{ArcTaskFile, SourcedTask};
use hrm_data::SplitData;
use hrm_eval::predictions::PredictionsMeta;
use hrm_eval::submission::{Submission, SubmissionStats};
use hrm_eval::{EvalReport, PredictionsWriter, TaskFamily};
use hrm_grid::codec::{canvas_side, ARC_VOCAB};
use hrm_model::{Model, ModelConfig};
use hrm_recipe::Recipe;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::checkpoint::{
    load_model_config, resolve_checkpoint, verified_file, EMA_FILE, MODEL_FILE,
};
use crate::progress::{self, Display};
use crate::run::{eval_split, forward_dtype, load_run_recipe, step_config};
use crate::run_error::RunError;
use crate::step::{Trainable, Trainer};

/// The file of per-task outcomes in a solve folder.
pub const SOLVE_FILE: &str = "solve.json";
/// The submission file in a solve folder (the one name of `hrm eval`'s submission too).
pub use hrm_eval::submission::SUBMISSION_FILE;

/// What to solve and how.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// The trained run folder.
    pub run_dir: PathBuf,
    /// `latest` (or `None`), `step_<N>`, or a checkpoint folder path.
    pub checkpoint: Option<String>,
    /// Task JSON files, folders of them, or ARC Prize `*_challenges.json` files (their `*_solutions.json`, when
    /// beside them, gives the outputs to score against).
    pub tasks: Vec<PathBuf>,
    /// The output folder.
    pub out_dir: PathBuf,
    /// Replace an existing output folder (only once the new one is complete).
    pub force: bool,
    /// Sign-SGD steps per task on the new puzzle rows.
    pub steps: u64,
    /// Stop fitting a task after this many seconds (`None` = no limit).
    pub max_seconds_per_task: Option<f64>,
    /// Augmented variants per task (`None` = the run's `data.num_aug`).
    pub num_aug: Option<usize>,
    /// Rows per fitting step (`None` = the run's `train.global_batch_size`).
    pub batch_size: Option<usize>,
    /// The seed of the build and of the row sampling.
    pub seed: u64,
    /// The device.
    pub device: Device,
    /// Show progress with an ETA on stderr.
    pub progress: bool,
}

/// What happened to one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// The task id.
    pub id: String,
    /// The file it was read from (a task file or a challenges file).
    pub source: PathBuf,
    /// Why the task was not solved (it could not be read, does not fit the run's canvas, ...); `None` when it
    /// was fitted and predicted.
    pub error: Option<String>,
    /// Test inputs.
    pub test_inputs: usize,
    /// Variants built (the original included).
    pub variants: usize,
    /// Sign-SGD steps taken.
    pub fit_steps: u64,
    /// Seconds spent fitting.
    pub fit_seconds: f64,
    /// Token accuracy on the demonstration rows of the last fitting step (a check that the fit went somewhere).
    pub fit_accuracy: Option<f64>,
    /// Whether every test input is right at rank 1 / within the top 2 (`None` when an output is unknown).
    pub pass_at_1: Option<bool>,
    /// See `pass_at_1`.
    pub pass_at_2: Option<bool>,
}

/// The summary `solve.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveSummary {
    /// The output folder.
    pub out_dir: PathBuf,
    /// The checkpoint used.
    pub checkpoint: PathBuf,
    /// Which weights: `ema` or `trained`.
    pub weights: String,
    /// Fitting steps per task, rows per step and the puzzle-embedding lr.
    pub steps: u64,
    /// Rows per fitting step.
    pub batch_size: usize,
    /// The recipe's puzzle-embedding lr the fit used.
    pub puzzle_emb_lr: f64,
    /// Variants per task asked for.
    pub num_aug: usize,
    /// Every task named, in order.
    pub tasks: Vec<TaskOutcome>,
    /// Tasks whose outputs are all known, and how many of those are solved at pass@1 and pass@2.
    pub scored: usize,
    /// See `scored`.
    pub solved_at_1: usize,
    /// See `scored`.
    pub solved_at_2: usize,
    /// Test inputs in the submission, padded ones and placeholders.
    pub submission_test_inputs: usize,
    /// Test inputs with one candidate (attempt 2 repeats attempt 1).
    pub submission_padded: usize,
    /// Test inputs with no valid candidate (placeholder attempts).
    pub submission_placeholders: usize,
    /// Seconds in all.
    pub seconds: f64,
}

/// Reads the tasks named on the command line, each as a test task; a task that cannot be read, repeats an id,
/// has no demonstration or does not fit the `canvas` is an outcome with an error, and the rest go on.
pub fn read_tasks(paths: &[PathBuf], canvas: usize) -> (Vec<SourcedTask>, Vec<TaskOutcome>) {
    let mut tasks: Vec<SourcedTask> = Vec::new();
    let mut failed = Vec::new();
    let fail = |id: String, source: &Path, error: String| TaskOutcome {
        id,
        source: source.to_path_buf(),
        error: Some(error),
        ..TaskOutcome::empty()
    };
    for path in paths {
        let files = match source_files(&ArcSource::with_role(path, SourceRole::Test)) {
            Ok(f) => f,
            Err(e) => {
                failed.push(fail(String::new(), path, e.to_string()));
                continue;
            }
        };
        if files.is_empty() {
            let msg = format!("{} holds no task file (*.json)", path.display());
            failed.push(fail(String::new(), path, msg));
        }
        for file in files {
            for (id, task) in read_file_lenient(&file) {
                match task.and_then(|t| match task_problem(&t, &tasks, canvas) {
                    Some(problem) => Err(problem),
                    None => Ok(t),
                }) {
                    Ok(t) => tasks.push(t),
                    Err(e) => failed.push(fail(id, &file.path, e)),
                }
            }
        }
    }
    (tasks, failed)
}

/// Why a task that was read cannot be solved: its id repeats one already read (naming that file), it has no
/// demonstration or no test input, or a grid does not fit the run's canvas; `None` when it can.
fn task_problem(t: &SourcedTask, read: &[SourcedTask], canvas: usize) -> Option<String> {
    if let Some(first) = read.iter().find(|s| s.task.id == t.task.id) {
        return Some(format!(
            "task id {} was already read from {}",
            t.task.id,
            first.path.display()
        ));
    }
    if t.task.train.is_empty() {
        return Some("the task has no demonstration pair to fit on".into());
    }
    if t.task.test.is_empty() {
        return Some("the task has no test input".into());
    }
    if !fits_canvas(&t.task, canvas) {
        return Some(format!(
            "a grid does not fit the run's {canvas}x{canvas} canvas (the run was trained on smaller grids)"
        ));
    }
    None
}

/// The tasks of one file, each read on its own: (id, task or why not).
fn read_file_lenient(file: &ArcTaskFile) -> Vec<(String, Result<SourcedTask, String>)> {
    let sourced = |task| SourcedTask {
        task,
        path: file.path.clone(),
        evaluation: true,
    };
    let stem = || {
        file.path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned())
    };
    if !is_challenges_file(&file.path) {
        let task = hrm_grid::arc::load_task(&file.path);
        let id = task.as_ref().map_or_else(|_| stem(), |t| t.id.clone());
        return vec![(id, task.map(sourced).map_err(|e| e.to_string()))];
    }
    let solutions = solutions_beside(&file.path);
    match read_combined(&file.path, solutions.as_deref()) {
        Ok(entries) => entries
            .into_iter()
            .map(|(id, t)| (id, t.map(sourced).map_err(|e| e.to_string())))
            .collect(),
        Err(e) => vec![(stem(), Err(e.to_string()))],
    }
}

impl TaskOutcome {
    fn empty() -> Self {
        TaskOutcome {
            id: String::new(),
            source: PathBuf::new(),
            error: None,
            test_inputs: 0,
            variants: 0,
            fit_steps: 0,
            fit_seconds: 0.0,
            fit_accuracy: None,
            pass_at_1: None,
            pass_at_2: None,
        }
    }
}

/// The trained network under a fresh, zero puzzle table of `num_ids` rows (the reference's initialisation of
/// puzzle embeddings), with the EMA weights for runs trained with `train.ema`.
fn open_network(
    ckpt: &Path,
    ema: bool,
    device: Device,
    forward: hrm_model::ForwardDtype,
    num_ids: i64,
    batch_size: usize,
) -> Result<(Model, &'static str), RunError> {
    let mut config: ModelConfig = load_model_config(ckpt)?;
    config.forward_dtype = forward;
    if config.vocab_size != ARC_VOCAB as i64 || canvas_side(config.seq_len as usize).is_none() {
        return Err(RunError::config(
            "--run",
            format!(
                "checkpoint {} is not an ARC model (vocab_size {}, seq_len {}): hrm solve answers ARC tasks",
                ckpt.display(),
                config.vocab_size,
                config.seq_len
            ),
        ));
    }
    if config.puzzle_emb_ndim == 0 {
        return Err(RunError::config(
            "--run",
            "the model has no puzzle embedding (puzzle_emb_ndim = 0): there is nothing to fit for a new task",
        ));
    }
    let fitted = ModelConfig {
        num_puzzle_identifiers: num_ids,
        ..config.clone()
    };
    crate::memory::check_batch_memory(
        &fitted,
        batch_size,
        true,
        "--batch-size",
        device,
        hrm_data::budget::available_memory_bytes(),
    )?;
    let (file, weights) = if ema {
        (EMA_FILE, "ema")
    } else {
        (MODEL_FILE, "trained")
    };
    let trained = Model::from_safetensors(&config, device, &verified_file(ckpt, file)?)?;
    config.num_puzzle_identifiers = num_ids;
    config.batch_size = batch_size as i64;
    let mut model = Model::new(&config, device, 0)?;
    model.copy_network_from(&trained)?;
    Ok((model, weights))
}

/// Samples fitting batches from one task's demonstration rows: `batch` rows drawn uniformly with replacement.
struct RowSampler<'a> {
    data: &'a SplitData,
    rows: Vec<(usize, i32)>,
    batch: usize,
    rng: ChaCha8Rng,
}

impl<'a> RowSampler<'a> {
    /// The demonstration rows of group `g` of the train split, with their puzzle ids.
    fn new(data: &'a SplitData, g: usize, batch: usize, seed: u64) -> Self {
        let rows = data
            .group_puzzles(g)
            .flat_map(|p| {
                let id = data.puzzle_identifiers[p];
                data.puzzle_examples(p).map(move |r| (r, id))
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(g as u64);
        RowSampler {
            data,
            rows,
            batch,
            rng,
        }
    }

    fn next(&mut self, device: Device) -> Result<hrm_model::Batch, RunError> {
        let s = self.data.seq_len();
        let (mut inputs, mut labels, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.batch {
            let (r, id) = self.rows[self.rng.random_range(0..self.rows.len())];
            inputs.extend(self.data.input(r).iter().map(|&t| i32::from(t)));
            labels.extend(self.data.label(r).iter().map(|&t| {
                if t == hrm_data::DATASET_IGNORE_LABEL {
                    hrm_data::sampler::LOSS_IGNORE_LABEL
                } else {
                    i32::from(t)
                }
            }));
            ids.push(id);
        }
        Ok(hrm_model::Batch::from_vecs(
            &inputs, &labels, &ids, self.batch, s, device,
        )?)
    }
}

/// Fits the puzzle rows of group `g` (one task) with the network frozen; returns (steps, seconds, accuracy of
/// the last step).
fn fit_task(
    trainer: &mut Trainer,
    data: &SplitData,
    g: usize,
    opts: &SolveOptions,
    batch: usize,
    bar: &indicatif::ProgressBar,
) -> Result<(u64, f64, Option<f64>), RunError> {
    let start = Instant::now();
    trainer.reset_carries();
    trainer.set_step_count(0);
    let mut sampler = RowSampler::new(data, g, batch, opts.seed);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed);
    rng.set_stream(g as u64);
    let (mut steps, mut last) = (0u64, None);
    while steps < opts.steps {
        if crate::stop::requested() {
            return Err(RunError::Interrupted(
                "stopped while fitting; nothing was written".into(),
            ));
        }
        if opts
            .max_seconds_per_task
            .is_some_and(|m| start.elapsed().as_secs_f64() >= m)
        {
            bar.inc(opts.steps - steps);
            break;
        }
        let b = sampler.next(trainer.model().device())?;
        last = trainer.train_step(&b, &mut rng)?.or(last);
        steps += 1;
        bar.inc(1);
    }
    let accuracy = match last {
        Some(report) => {
            let m = report.read_metrics()?;
            (m.count > 0.0).then(|| m.accuracy / m.count)
        }
        None => None,
    };
    let table = trainer
        .model()
        .puzzle_table()
        .expect("open_network checked the puzzle table");
    if hrm_model::checkpoint::non_finite_count(table) > 0 {
        return Err(RunError::config(
            "--steps",
            "the fitted puzzle rows are not finite",
        ));
    }
    Ok((steps, start.elapsed().as_secs_f64(), accuracy))
}

/// What a solve reads before it builds anything: the run's recipe and checkpoint, and the settings resolved.
struct SolvePlan<'a> {
    opts: &'a SolveOptions,
    recipe: Recipe,
    ckpt: PathBuf,
    canvas: usize,
    num_aug: usize,
    batch: usize,
}

/// The new tasks' build: the dataset folder and its two splits.
struct Built {
    dataset: PathBuf,
    train: SplitData,
    test: Arc<SplitData>,
}

/// Solves the tasks of `opts` (see the module documentation) and returns the summary written to `solve.json`:
/// the named phases read, build, fit, predict and vote, then write, into a staged folder that replaces
/// `opts.out_dir` only when complete.
pub fn solve(opts: &SolveOptions) -> Result<SolveSummary, RunError> {
    let start = Instant::now();
    let plan = SolvePlan::read(opts)?;
    let (tasks, mut failed) = read_tasks(&opts.tasks, plan.canvas);
    if tasks.is_empty() {
        return Err(nothing_solved(&failed));
    }
    let staged = hrm_data::layout::StagedDir::create(&opts.out_dir)?;
    let out = staged.path().to_path_buf();
    let built = plan.build(&tasks, &out)?;
    let (mut trainer, weights) = plan.network(&built)?;
    let (mut outcomes, progress_dir) = plan.fit(&mut trainer, &tasks, &built)?;
    let report = plan.predict(trainer.into_model(), &built, &out)?;
    if outcomes.iter().all(|o| o.error.is_some()) {
        let all: Vec<TaskOutcome> = outcomes.iter().chain(&failed).cloned().collect();
        return Err(nothing_solved(&all));
    }
    let (submission, stats) = final_submission(&report, &tasks, &failed)?;
    submission.write(&out.join(SUBMISSION_FILE))?;
    score_outcomes(&mut outcomes, &report);
    plan.write_report(&out, outcomes.len())?;
    outcomes.append(&mut failed);
    let summary = plan.summary(weights, outcomes, &stats, start);
    let json = serde_json::to_string_pretty(&summary).map_err(|e| RunError::json(&out, e))?;
    hrm_data::write_atomic(&out.join(SOLVE_FILE), json.as_bytes())?;
    staged.commit()?;
    let _ = std::fs::remove_dir_all(progress_dir);
    Ok(summary)
}

impl<'a> SolvePlan<'a> {
    /// Read: the run's recipe, the checkpoint and its canvas, the output folder's check, the variants and rows
    /// per fitting step.
    fn read(opts: &'a SolveOptions) -> Result<SolvePlan<'a>, RunError> {
        let recipe = load_run_recipe(&opts.run_dir)?;
        let ckpt = resolve_checkpoint(&opts.run_dir, opts.checkpoint.as_deref())?;
        let config = load_model_config(&ckpt)?;
        let canvas = canvas_side(config.seq_len as usize).unwrap_or(0);
        check_out_dir(&opts.out_dir, opts.force)?;
        let num_aug = opts.num_aug.unwrap_or(recipe.data.num_aug);
        let batch = opts
            .batch_size
            .unwrap_or(recipe.train.global_batch_size)
            .max(1);
        Ok(SolvePlan {
            opts,
            recipe,
            ckpt,
            canvas,
            num_aug,
            batch,
        })
    }

    /// Build: the tasks' variants into `out/dataset`, read back.
    fn build(&self, tasks: &[SourcedTask], out: &Path) -> Result<Built, RunError> {
        let build = ArcBuildConfig {
            sources: Vec::new(),
            num_aug: self.num_aug,
            seed: self.opts.seed,
            threads: 0,
            canvas: self.canvas,
            evaluation_only: false,
            max_tasks: 0,
        };
        let dataset = out.join("dataset");
        build_arc_tasks(tasks, &build, None, &dataset)?;
        let train = hrm_data::load_split(&dataset, "train")?;
        let test = Arc::new(hrm_data::load_split(&dataset, "test")?);
        Ok(Built {
            dataset,
            train,
            test,
        })
    }

    /// The checkpoint's network under a fresh puzzle table of the build's size, in a trainer that fits only that
    /// table; and which weights it took.
    fn network(&self, built: &Built) -> Result<(Trainer, &'static str), RunError> {
        let opts = self.opts;
        let forward = forward_dtype(&self.recipe, opts.device);
        let num_ids = i64::from(built.train.metadata.num_puzzle_identifiers);
        let (model, weights) = open_network(
            &self.ckpt,
            self.recipe.train.ema,
            opts.device,
            forward,
            num_ids,
            self.batch,
        )?;
        let mut step = step_config(&self.recipe, opts.steps.max(1));
        step.global_batch_size = self.batch as i64;
        step.micro_batches = 1;
        step.lr_warmup_steps = step.lr_warmup_steps.min(opts.steps / 10);
        let mut trainer = Trainer::new(model, step)?;
        trainer.set_trainable(Trainable::PuzzleTableOnly)?;
        trainer.set_value_checks(false); // the build was validated when loaded
        Ok((trainer, weights))
    }

    /// Fit: each task's puzzle rows in turn (or as kept by an interrupted solve), with progress; returns the
    /// outcomes and the progress folder to remove once the result is written.
    fn fit(
        &self,
        trainer: &mut Trainer,
        tasks: &[SourcedTask],
        built: &Built,
    ) -> Result<(Vec<TaskOutcome>, PathBuf), RunError> {
        let opts = self.opts;
        let bar = progress::bar(
            opts.steps * tasks.len() as u64,
            "fit steps",
            Display::shown_if(opts.progress),
        );
        let key = progress_key(opts, &self.ckpt, self.num_aug, self.batch);
        let kept = Progress::open(&opts.out_dir, &key)?;
        let mut outcomes = Vec::new();
        for (g, t) in tasks.iter().enumerate() {
            bar.set_message(t.task.id.clone());
            let mut outcome = TaskOutcome {
                id: t.task.id.clone(),
                source: t.path.clone(),
                test_inputs: t.task.test.len(),
                variants: built.train.group_puzzles(g).len(),
                ..TaskOutcome::empty()
            };
            if kept.load(g, trainer, &built.train, &mut outcome)? {
                bar.inc(opts.steps);
                outcomes.push(outcome);
                continue;
            }
            match fit_task(trainer, &built.train, g, opts, self.batch, &bar) {
                Ok((steps, seconds, acc)) => {
                    (outcome.fit_steps, outcome.fit_seconds, outcome.fit_accuracy) =
                        (steps, seconds, acc);
                    kept.save(g, trainer, &built.train, &outcome)?;
                }
                Err(RunError::Interrupted(_)) => return Err(kept.interrupted()),
                Err(e) => {
                    outcome.error = Some(format!("fitting failed: {e}"));
                    reset_rows(trainer, &built.train, g)?;
                }
            }
            outcomes.push(outcome);
        }
        bar.finish_and_clear();
        Ok((outcomes, kept.dir))
    }

    /// Predict and vote: the test split through the fitted model into `out/predictions`, scored (votes over
    /// the variants) as `hrm eval` scores it.
    fn predict(&self, model: Model, built: &Built, out: &Path) -> Result<EvalReport, RunError> {
        let predictions = out.join("predictions");
        write_predictions(
            &model,
            &built.test,
            &predictions,
            &built.dataset,
            &self.ckpt,
            self.recipe.eval.batch_size,
            self.opts,
        )?;
        Ok(hrm_eval::evaluate(&predictions, &built.dataset)?)
    }

    /// Write: the report of the answers (`out/report`).
    fn write_report(&self, out: &Path, tasks: usize) -> Result<(), RunError> {
        let options = hrm_eval::report::ReportOptions {
            title: Some(format!("hrm solve: {tasks} new tasks")),
            note: format!(
                "New tasks answered by `hrm solve` with the network of {} frozen: {} sign-SGD steps per task on \
                 fresh puzzle-embedding rows, {} variants per task.",
                self.ckpt.display(),
                self.opts.steps,
                self.num_aug + 1
            ),
            ..Default::default()
        };
        hrm_eval::report::write_report(
            &out.join("report"),
            &out.join("predictions"),
            &out.join("dataset"),
            &options,
        )?;
        Ok(())
    }

    /// The summary `solve.json` holds.
    fn summary(
        &self,
        weights: &str,
        outcomes: Vec<TaskOutcome>,
        stats: &SubmissionStats,
        start: Instant,
    ) -> SolveSummary {
        let scored: Vec<&TaskOutcome> = outcomes.iter().filter(|o| o.pass_at_2.is_some()).collect();
        let (scored_n, at_1, at_2) = (
            scored.len(),
            scored.iter().filter(|o| o.pass_at_1 == Some(true)).count(),
            scored.iter().filter(|o| o.pass_at_2 == Some(true)).count(),
        );
        SolveSummary {
            out_dir: self.opts.out_dir.clone(),
            checkpoint: self.ckpt.clone(),
            weights: weights.to_string(),
            steps: self.opts.steps,
            batch_size: self.batch,
            puzzle_emb_lr: self.recipe.train.puzzle_emb_lr,
            num_aug: self.num_aug,
            scored: scored_n,
            solved_at_1: at_1,
            solved_at_2: at_2,
            submission_test_inputs: stats.test_inputs,
            submission_padded: stats.padded,
            submission_placeholders: stats.placeholders,
            tasks: outcomes,
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

/// The submission of the fitted tasks' answers with placeholders for the failed tasks, and what it holds; refused
/// unless it covers every task read (with its number of test inputs) and nothing else.
fn final_submission(
    report: &EvalReport,
    tasks: &[SourcedTask],
    failed: &[TaskOutcome],
) -> Result<(Submission, SubmissionStats), RunError> {
    let (mut submission, mut stats) = match report.arc.as_ref() {
        Some(arc) => Submission::from_report(arc),
        None => (Submission::default(), SubmissionStats::default()),
    };
    let added = add_failed_tasks(&mut submission, &mut stats, failed);
    let expected: Vec<(String, usize)> = tasks
        .iter()
        .map(|t| (t.task.id.clone(), t.task.test.len()))
        .chain(added)
        .collect();
    submission.validate(&expected).map_err(|e| {
        RunError::config(
            "TASKS",
            format!("the submission does not cover the tasks read, so it is not written: {e}"),
        )
    })?;
    Ok((submission, stats))
}

/// What a solve folder holds: the only entries `--force` replaces.
const SOLVE_ENTRIES: [&str; 5] = [
    "dataset",
    "predictions",
    "report",
    SUBMISSION_FILE,
    SOLVE_FILE,
];

/// Refuses an existing output folder without `force`, and with it one holding anything but a solve's files
/// (the old folder stays until the new one is complete).
fn check_out_dir(out: &Path, force: bool) -> Result<(), RunError> {
    if out.exists() && !force {
        return Err(RunError::config(
            "--out",
            format!(
                "{} already exists; pass --force to replace it (the old folder stays until the new one is complete)",
                out.display()
            ),
        ));
    }
    hrm_data::check_folder_holds_only(out, &SOLVE_ENTRIES, "a solve folder")
        .map_err(|e| RunError::config("--out", e.to_string()))
}

/// The tasks fitted so far, kept beside the output folder (`.<name>.solve-progress/`: per task its fitted puzzle
/// rows and its outcome) while a solve runs, so that the same command run again after Ctrl-C continues with the
/// tasks not yet fitted. Its `key.txt` names the command's settings; another command starts afresh. It is removed
/// once the output folder is written.
struct Progress {
    dir: PathBuf,
}

/// The settings that make a kept fit valid for a rerun: the checkpoint, the tasks named and the fit's options.
fn progress_key(opts: &SolveOptions, ckpt: &Path, num_aug: usize, batch: usize) -> String {
    format!(
        "checkpoint {}\ntasks {:?}\nsteps {} max_seconds {:?} num_aug {num_aug} batch {batch} seed {}\n",
        ckpt.display(),
        opts.tasks,
        opts.steps,
        opts.max_seconds_per_task,
        opts.seed
    )
}

impl Progress {
    fn open(out: &Path, key: &str) -> Result<Self, RunError> {
        let name = out
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        let dir = out.with_file_name(format!(".{name}.solve-progress"));
        let key_path = dir.join("key.txt");
        if std::fs::read_to_string(&key_path).is_ok_and(|k| k == key) {
            return Ok(Progress { dir });
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(RunError::io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(RunError::io(&dir))?;
        hrm_data::write_atomic(&key_path, key.as_bytes())?;
        Ok(Progress { dir })
    }

    fn paths(&self, g: usize) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{g}.rows.pt")),
            self.dir.join(format!("{g}.json")),
        )
    }

    /// Puts the kept rows of task `g` into the puzzle table and its outcome into `outcome`; false when the task
    /// was not kept.
    fn load(
        &self,
        g: usize,
        trainer: &mut Trainer,
        train: &SplitData,
        outcome: &mut TaskOutcome,
    ) -> Result<bool, RunError> {
        let (rows_path, json_path) = self.paths(g);
        let saved = std::fs::read_to_string(&json_path)
            .ok()
            .and_then(|t| serde_json::from_str::<TaskOutcome>(&t).ok());
        let Some(saved) = saved.filter(|o| o.id == outcome.id && rows_path.is_file()) else {
            return Ok(false);
        };
        let rows = Tensor::load(&rows_path).map_err(RunError::tch("reading kept puzzle rows"))?;
        let index = group_ids(train, g);
        if let Some(table) = trainer.model_mut().puzzle_table_mut() {
            let rows = rows.to_device(table.device()).to_kind(table.kind());
            let index = index.to_device(table.device());
            let _ = tch::no_grad(|| table.f_index_copy_(0, &index, &rows))
                .map_err(RunError::tch("restoring kept puzzle rows"))?;
        }
        *outcome = saved;
        Ok(true)
    }

    /// Keeps the fitted rows of task `g` and its outcome (the outcome last: it marks a complete entry).
    fn save(
        &self,
        g: usize,
        trainer: &Trainer,
        train: &SplitData,
        outcome: &TaskOutcome,
    ) -> Result<(), RunError> {
        let (rows_path, json_path) = self.paths(g);
        if let Some(table) = trainer.model().puzzle_table() {
            let rows = tch::no_grad(|| {
                table
                    .index_select(0, &group_ids(train, g).to_device(table.device()))
                    .to_device(Device::Cpu)
            });
            rows.save(&rows_path)
                .map_err(RunError::tch("keeping fitted puzzle rows"))?;
        }
        let json = serde_json::to_string(outcome).map_err(|e| RunError::json(&json_path, e))?;
        hrm_data::write_atomic(&json_path, json.as_bytes())?;
        Ok(())
    }

    /// The error of a solve stopped while fitting, naming what was kept.
    fn interrupted(&self) -> RunError {
        let kept = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
                })
                .count()
            })
            .unwrap_or(0);
        RunError::Interrupted(format!(
            "stopped while fitting; {kept} fitted tasks are kept in {}: run the same command again to \
             continue",
            self.dir.display()
        ))
    }
}

/// The puzzle identifiers of group `g` (one task's variants), as an index tensor on the CPU.
fn group_ids(train: &SplitData, g: usize) -> Tensor {
    let ids: Vec<i64> = train
        .group_puzzles(g)
        .map(|p| i64::from(train.puzzle_identifiers[p]))
        .collect();
    Tensor::from_slice(&ids)
}

/// Puts the puzzle rows of group `g` back to zero (after a failed fit).
fn reset_rows(trainer: &mut Trainer, train: &SplitData, g: usize) -> Result<(), RunError> {
    let ids: Vec<i64> = train
        .group_puzzles(g)
        .map(|p| i64::from(train.puzzle_identifiers[p]))
        .collect();
    if let Some(table) = trainer.model_mut().puzzle_table_mut() {
        let index = Tensor::from_slice(&ids).to_device(table.device());
        tch::no_grad(|| {
            let _ = table.index_fill_(0, &index, 0.0);
        });
    }
    Ok(())
}

/// Predicts every test row (all variants of every test input) into a predictions folder tied to the dataset.
fn write_predictions(
    model: &Model,
    test: &Arc<SplitData>,
    out: &Path,
    dataset: &Path,
    ckpt: &Path,
    batch_size: usize,
    opts: &SolveOptions,
) -> Result<(), RunError> {
    let meta = PredictionsMeta {
        task: Some(TaskFamily::Arc),
        num_segments: model.config().halt_max_steps as usize,
        checkpoint: ckpt.display().to_string(),
        dataset: dataset.display().to_string(),
        dataset_fingerprint: Some(hrm_data::layout::dataset_fingerprint(dataset)?),
    };
    let mut writer = PredictionsWriter::create(out, test.seq_len(), meta)?;
    let bar = progress::bar(
        test.num_examples() as u64,
        "rows",
        Display::shown_if(opts.progress),
    );
    eval_split(model, test, batch_size.max(1), 0, &[], |r| {
        crate::predict::write_batch(&mut writer, test, r)?;
        bar.inc(r.valid as u64);
        Ok(())
    })?;
    writer.finish(None)?;
    bar.finish_and_clear();
    Ok(())
}

/// Placeholder entries for the tasks that could not be solved, so that the submission still covers them (the
/// competition scores a missing task as wrong; a placeholder is as wrong but keeps the file complete), counted in
/// `stats`; returns the (task id, test inputs) added.
fn add_failed_tasks(
    submission: &mut Submission,
    stats: &mut SubmissionStats,
    failed: &[TaskOutcome],
) -> Vec<(String, usize)> {
    let placeholder = || hrm_eval::submission::AttemptPair {
        attempt_1: vec![vec![0]],
        attempt_2: vec![vec![0]],
    };
    let mut added = Vec::new();
    for f in failed.iter().filter(|f| !f.id.is_empty()) {
        let Some(n) = test_count(f) else { continue };
        if submission.0.contains_key(&f.id) {
            continue;
        }
        submission
            .0
            .insert(f.id.clone(), (0..n).map(|_| placeholder()).collect());
        stats.tasks += 1;
        stats.test_inputs += n;
        stats.placeholders += n;
        added.push((f.id.clone(), n));
    }
    added
}

/// The error of a solve in which no task could be fitted and predicted: nothing is written (an existing output
/// folder is kept), and each task's failure is named.
fn nothing_solved(outcomes: &[TaskOutcome]) -> RunError {
    let mut lines: Vec<String> = outcomes
        .iter()
        .take(10)
        .map(|o| match o.id.as_str() {
            "" => format!(
                "{}: {}",
                o.source.display(),
                o.error.as_deref().unwrap_or("")
            ),
            id => format!(
                "{} (task {id}): {}",
                o.source.display(),
                o.error.as_deref().unwrap_or("")
            ),
        })
        .collect();
    if outcomes.len() > 10 {
        lines.push(format!("... and {} more", outcomes.len() - 10));
    }
    let what = if outcomes.is_empty() {
        "no task was given".to_string()
    } else {
        lines.join("\n  ")
    };
    RunError::config(
        "TASKS",
        format!("no task could be solved, so nothing was written:\n  {what}"),
    )
}

/// The number of test inputs of a failed task, when its file can still be read that far.
fn test_count(f: &TaskOutcome) -> Option<usize> {
    if f.test_inputs > 0 {
        return Some(f.test_inputs);
    }
    let text = std::fs::read_to_string(&f.source).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let task = if is_challenges_file(&f.source) {
        value.get(&f.id)?
    } else {
        &value
    };
    Some(task.get("test")?.as_array()?.len())
}

/// Fills pass@1/2 of the fitted tasks from the scored report (tasks with unknown outputs stay `None`).
fn score_outcomes(outcomes: &mut [TaskOutcome], report: &EvalReport) {
    let Some(arc) = &report.arc else {
        return;
    };
    for o in outcomes.iter_mut().filter(|o| o.error.is_none()) {
        if let Some(t) = arc.tasks.iter().find(|t| t.name == o.id) {
            let known = t.tests.iter().all(|x| x.truth.is_some());
            if known {
                o.pass_at_1 = Some(t.solved_at(1));
                o.pass_at_2 = Some(t.solved_at(2));
            }
        }
    }
}
