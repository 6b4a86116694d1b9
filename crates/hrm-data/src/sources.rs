//! Where ARC tasks come from: the reference's folder trees, plain folders or single task files, and the ARC Prize
//! (Kaggle) combined format (`<prefix>_<subset>_challenges.json` with an optional `_solutions.json`), each marked
//! as a training or a test source; task ids unique across all sources.
//! Follows the reference's `dataset/build_arc_dataset.py` and TRM's `dataset/build_arc_dataset.py` (combined files).

use crate::error::DataError;
use hrm_grid::arc::ArcTask;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a source's test pairs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceRole {
    /// Every pair of every task trains (the reference's `training` folders).
    Training,
    /// Demonstration pairs train; test pairs go to the test split (the reference's `evaluation` folders).
    Test,
}

/// One source of ARC tasks: a folder, a task file or a combined challenges file, with its role.
///
/// What the path holds decides how it is read: a JSON object of tasks is the combined format, whatever its name
/// ([`is_challenges_file`]; a sibling `*_solutions.json` of a `*_challenges.json`, when present, gives the test
/// outputs); another `.json` file is one task; a folder
/// contributes its own `*.json` files, then those of each subfolder (sorted by name; other files, such as
/// licenses and id lists, are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArcSource {
    /// The folder or file.
    pub path: PathBuf,
    /// The role of every task of the source; `None` = the reference rule: tasks in a folder named
    /// `evaluation`, and combined files whose subset starts with `evaluation`, are test tasks.
    pub role: Option<SourceRole>,
}

impl ArcSource {
    /// A source with the reference rule for its role.
    pub fn auto(path: impl Into<PathBuf>) -> Self {
        ArcSource {
            path: path.into(),
            role: None,
        }
    }

    /// A source whose every task has `role`.
    pub fn with_role(path: impl Into<PathBuf>, role: SourceRole) -> Self {
        ArcSource {
            path: path.into(),
            role: Some(role),
        }
    }

    /// Parses `PATH`, `train=PATH` or `test=PATH` (the form of `--source` and of the recipe's `data.sources`);
    /// a relative path is taken relative to `base` when given. A path that exists as written is never split
    /// at `=`.
    pub fn parse(spec: &str, base: Option<&Path>) -> Self {
        let resolve = |p: &str| match base {
            Some(b) if Path::new(p).is_relative() => b.join(p),
            _ => PathBuf::from(p),
        };
        if !resolve(spec).exists() {
            for (prefix, role) in [
                ("train=", SourceRole::Training),
                ("test=", SourceRole::Test),
            ] {
                if let Some(rest) = spec.strip_prefix(prefix) {
                    return ArcSource::with_role(resolve(rest), role);
                }
            }
        }
        ArcSource::auto(resolve(spec))
    }
}

impl std::fmt::Display for ArcSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.role {
            None => write!(f, "{}", self.path.display()),
            Some(SourceRole::Training) => write!(f, "train={}", self.path.display()),
            Some(SourceRole::Test) => write!(f, "test={}", self.path.display()),
        }
    }
}

/// A loaded task with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedTask {
    /// The task (test outputs may be absent).
    pub task: ArcTask,
    /// The task file, or the combined challenges file it is an entry of.
    pub path: PathBuf,
    /// True for a test task: its test pairs go to the test split.
    pub evaluation: bool,
}

/// One task file of a source, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcTaskFile {
    /// The JSON file.
    pub path: PathBuf,
    /// True when its tasks are test tasks.
    pub evaluation: bool,
}

/// True for a combined challenges file, recognised by what it holds, whatever its name: a non-empty JSON object
/// whose every value is an object (task id -> `{"train", "test"}`), where a single task's values are lists. A
/// file that cannot be read or parsed counts as one when it is named `*_challenges.json` (so that reading it
/// names the problem in the combined format's terms).
pub fn is_challenges_file(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_challenges.json"));
    let Ok(text) = std::fs::read_to_string(path) else {
        return named;
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => !map.is_empty() && map.values().all(Value::is_object),
        Ok(_) => false,
        Err(_) => named,
    }
}

/// The solutions file beside a challenges file (`x_challenges.json` -> `x_solutions.json`), when it exists.
pub fn solutions_beside(challenges: &Path) -> Option<PathBuf> {
    let name = challenges.file_name()?.to_str()?;
    let stem = name.strip_suffix("_challenges.json")?;
    let path = challenges.with_file_name(format!("{stem}_solutions.json"));
    path.is_file().then_some(path)
}

fn json_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DataError> {
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if path.is_file() && path.extension().is_some_and(|x| x == "json") {
            files.push(path);
        }
    }
    files.sort();
    subdirs.sort();
    Ok((files, subdirs))
}

/// The files of a source in reading order, each with its role (see [`ArcSource`]).
pub fn source_files(src: &ArcSource) -> Result<Vec<ArcTaskFile>, DataError> {
    let path = &src.path;
    let role_of = |evaluation_named: bool| match src.role {
        Some(role) => role == SourceRole::Test,
        None => evaluation_named,
    };
    if path.is_file() {
        let evaluation = is_challenges_file(path)
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix("_challenges.json"))
                .and_then(|s| s.rsplit('_').next())
                .is_some_and(|subset| subset.starts_with("evaluation"));
        return Ok(vec![ArcTaskFile {
            path: path.clone(),
            evaluation: role_of(evaluation),
        }]);
    }
    if !path.is_dir() {
        return Err(DataError::Config {
            option: "sources".into(),
            msg: format!("{} is neither a folder nor a task file", path.display()),
        });
    }
    let named_evaluation = |p: &Path| p.file_name().is_some_and(|n| n == "evaluation");
    let (files, subdirs) = json_files(path)?;
    let mut out: Vec<ArcTaskFile> = files
        .into_iter()
        .map(|p| ArcTaskFile {
            path: p,
            evaluation: role_of(named_evaluation(path)),
        })
        .collect();
    for dir in subdirs {
        let evaluation = role_of(named_evaluation(&dir));
        out.extend(json_files(&dir)?.0.into_iter().map(|p| ArcTaskFile {
            path: p,
            evaluation,
        }));
    }
    Ok(out)
}

/// The task files of the sources, in order: a source's own `*.json` files, then each subfolder's.
pub fn list_arc_tasks(sources: &[ArcSource]) -> Result<Vec<ArcTaskFile>, DataError> {
    let mut out = Vec::new();
    for src in sources {
        out.extend(source_files(src)?);
    }
    Ok(out)
}

/// A JSON object's entries in file order (serde_json's own map sorts its keys).
struct OrderedEntries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of task id -> task")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(OrderedEntries(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DataError::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// One entry of a combined challenges file: the task id and the task, or why that entry cannot be used.
pub type CombinedEntry = (String, Result<ArcTask, DataError>);

/// Reads a combined challenges file (task id -> `{"train", "test"}`), in file order, with the test outputs of
/// `solutions` (task id -> one output grid per test input) when given. Each entry parses on its own, so one bad
/// task does not hide the others; a file that does not parse as a whole is one error.
pub fn read_combined(
    challenges: &Path,
    solutions: Option<&Path>,
) -> Result<Vec<CombinedEntry>, DataError> {
    let entries: OrderedEntries = read_json(challenges)?;
    let mut solved: Option<HashMap<String, Value>> = match solutions {
        Some(p) => Some(read_json(p)?),
        None => None,
    };
    let mut out = Vec::with_capacity(entries.0.len());
    for (id, mut value) in entries.0 {
        let outputs = solved.as_mut().map(|s| s.remove(&id));
        let task = merge_solutions(&id, &mut value, outputs, solutions).and_then(|()| {
            Ok(hrm_grid::arc::parse_task(
                &id,
                &value.to_string(),
                challenges,
            )?)
        });
        out.push((id, task));
    }
    if let (Some(left), Some(path)) = (solved, solutions) {
        if let Some(extra) = left.keys().min() {
            return Err(DataError::Task {
                path: path.to_path_buf(),
                msg: format!(
                    "task {extra}: has solutions but is not in {} ({} such tasks)",
                    challenges.display(),
                    left.len()
                ),
            });
        }
    }
    Ok(out)
}

/// Puts the outputs of a solutions entry into the test pairs of a challenges entry.
fn merge_solutions(
    id: &str,
    task: &mut Value,
    outputs: Option<Option<Value>>,
    solutions: Option<&Path>,
) -> Result<(), DataError> {
    let (Some(outputs), Some(path)) = (outputs, solutions) else {
        return Ok(());
    };
    let err = |msg: String| DataError::Task {
        path: path.to_path_buf(),
        msg: format!("task {id}: {msg}"),
    };
    let outputs = outputs.ok_or_else(|| err("missing from the solutions file".into()))?;
    let Value::Array(outputs) = outputs else {
        return Err(err("is not a list of output grids".into()));
    };
    let Some(tests) = task.get_mut("test").and_then(Value::as_array_mut) else {
        return Ok(()); // parse_task names the missing section
    };
    if tests.len() != outputs.len() {
        return Err(err(format!(
            "has {} output grids for {} test inputs",
            outputs.len(),
            tests.len()
        )));
    }
    for (pair, output) in tests.iter_mut().zip(outputs) {
        if let Some(obj) = pair.as_object_mut() {
            obj.insert("output".into(), output);
        }
    }
    Ok(())
}

/// Reads every task of one task file (one task, or all entries of a combined challenges file).
pub fn read_task_file(file: &ArcTaskFile) -> Result<Vec<SourcedTask>, DataError> {
    let sourced = |task| SourcedTask {
        task,
        path: file.path.clone(),
        evaluation: file.evaluation,
    };
    if !is_challenges_file(&file.path) {
        return Ok(vec![sourced(hrm_grid::arc::load_task(&file.path)?)]);
    }
    let solutions = solutions_beside(&file.path);
    read_combined(&file.path, solutions.as_deref())?
        .into_iter()
        .map(|(_, task)| task.map(sourced))
        .collect()
}

/// Reads every task of the sources, in order, and checks that task ids are unique.
pub fn load_sources(sources: &[ArcSource]) -> Result<Vec<SourcedTask>, DataError> {
    let mut tasks = Vec::new();
    for file in list_arc_tasks(sources)? {
        tasks.extend(read_task_file(&file)?);
    }
    check_unique_ids(&tasks)?;
    Ok(tasks)
}

/// Refuses two tasks with the same id (they would share one puzzle identifier), naming both files.
pub fn check_unique_ids(tasks: &[SourcedTask]) -> Result<(), DataError> {
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for t in tasks {
        if let Some(first) = seen.insert(&t.task.id, &t.path) {
            return Err(DataError::Task {
                path: t.path.clone(),
                msg: format!(
                    "task {}: the same task id is already read from {}; task ids must be unique across \
                     sources (rename one file, or leave one source out)",
                    t.task.id,
                    first.display()
                ),
            });
        }
    }
    Ok(())
}
