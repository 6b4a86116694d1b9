//! Where a recipe's dataset lives and what to do when it is not there: the default folder, the `hrm build-data`
//! command that builds it, and the error for a `--dataset` that is missing, holds raw task files or is some
//! other folder (never advising to build into the raw data or into a folder that holds something else).

use std::path::{Path, PathBuf};

use hrm_recipe::Recipe;

use crate::run_error::RunError;

/// The raw-data folders `hrm build-data` reads under `--data-dir` (`$HRM_DATA_DIR`).
const RAW_FOLDERS: [&str; 6] = [
    "arc-agi-1",
    "arc-agi-2",
    "arc-kaggle",
    "concept-arc",
    "sudoku-sources",
    "maze-30x30-hard-1k",
];

/// The default dataset folder of a recipe: `$HRM_DATASETS_DIR/<name>` or `datasets/built/<name>`.
pub fn default_dataset_dir(recipe: &Recipe) -> PathBuf {
    let base = std::env::var_os("HRM_DATASETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("datasets/built"));
    base.join(recipe.dataset_name())
}

/// True when `dir` holds a built dataset's split `split` (its `dataset.json`).
pub fn holds_split(dir: &Path, split: &str) -> bool {
    dir.join(split).join("dataset.json").is_file()
}

/// The command that builds a recipe's dataset into `out`; `recipe_arg` is the recipe as the user can name it
/// (a preset, a .toml file, or a run's `recipe.toml`). `data_dir` is the raw-data folder when it is known.
pub fn build_command(
    recipe_arg: &str,
    recipe: &Recipe,
    out: &Path,
    data_dir: Option<&Path>,
) -> String {
    let mut cmd = format!("hrm build-data --recipe {recipe_arg}");
    for s in recipe
        .overrides
        .iter()
        .filter(|s| s.trim().starts_with("data."))
    {
        cmd.push_str(&format!(" --set {s}"));
    }
    cmd.push_str(&format!(" --out {}", out.display()));
    // The raw data: as found, else $HRM_DATA_DIR when set (build-data reads it too), else the shared folder
    // beside a clone.
    let data = match data_dir {
        Some(d) => Some(d.display().to_string()),
        None if std::env::var_os("HRM_DATA_DIR").is_some() => None,
        None => Some(match Path::new("../shared/datasets").is_dir() {
            true => "../shared/datasets".to_string(),
            false => "<folder holding arc-agi-1/, concept-arc/, ...>".to_string(),
        }),
    };
    if let Some(d) = data {
        cmd.push_str(&format!(" --data-dir {d}"));
    }
    cmd
}

/// The raw-data root that `dir` is or lies in: the nearest of `dir` and its ancestors that holds one of the
/// folders `hrm build-data` reads, or whose own name is one of them (then its parent).
fn raw_data_root(dir: &Path) -> Option<PathBuf> {
    for d in dir.ancestors() {
        if RAW_FOLDERS.iter().any(|f| d.join(f).is_dir()) {
            return Some(d.to_path_buf());
        }
        let name = d.file_name().map(|n| n.to_string_lossy().to_string());
        if name.is_some_and(|n| RAW_FOLDERS.contains(&n.as_str())) {
            return d.parent().map(Path::to_path_buf);
        }
    }
    None
}

/// The number of `.json` and `.csv` files in `dir` and its direct subfolders (raw task and puzzle files).
fn raw_files(dir: &Path) -> usize {
    let is_raw = |p: &Path| {
        p.extension()
            .is_some_and(|e| e == "json" || e == "csv" || e == "npy")
    };
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            n += std::fs::read_dir(&p)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| is_raw(&e.path()))
                .count();
        } else if is_raw(&p) {
            n += 1;
        }
    }
    n
}

/// The error for a dataset folder `dir` that has no split `split`, with the command that builds one:
/// * missing: build it there;
/// * raw task files (under a raw-data root): build from them into the recipe's default folder, reading them
///   with `--data-dir`;
/// * anything else: build into the default folder (never into a folder that holds something else).
pub fn missing_dataset(dir: &Path, split: &str, recipe_arg: &str, recipe: &Recipe) -> RunError {
    let mut fresh = default_dataset_dir(recipe);
    if fresh == dir || fresh.exists() {
        fresh = PathBuf::from(format!("{}-{split}-rebuilt", fresh.display()));
    }
    let message = if !dir.exists() {
        format!(
            "dataset folder {} does not exist. Build it with:\n  {}",
            dir.display(),
            build_command(recipe_arg, recipe, dir, None)
        )
    } else if let (Some(root), n @ 1..) = (raw_data_root(dir), raw_files(dir)) {
        format!(
            "{} holds raw data ({n} task or puzzle files), not a built dataset: --dataset takes the folder \
             `hrm build-data` writes (train/, test/, identifiers.json). Build one from the raw data into a \
             folder of its own with:\n  {}",
            dir.display(),
            build_command(recipe_arg, recipe, &fresh, Some(&root))
        )
    } else {
        format!(
            "{} is not a built dataset: it has no {split}/dataset.json (a dataset folder holds train/, test/ \
             and identifiers.json, as `hrm build-data` writes them). Build one into a folder of its own \
             with:\n  {}",
            dir.display(),
            build_command(recipe_arg, recipe, &fresh, None)
        )
    };
    RunError::config("--dataset", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_data_is_told_apart_from_a_missing_or_foreign_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let recipe = Recipe::load("tiny", &[]).unwrap();
        let missing = tmp.path().join("nope");
        let e = missing_dataset(&missing, "train", "tiny", &recipe).to_string();
        assert!(e.contains("does not exist") && e.contains("--out"), "{e}");
        assert!(e.contains(&missing.display().to_string()), "{e}");

        let raw = tmp.path().join("raw").join("arc-agi-1");
        std::fs::create_dir_all(raw.join("evaluation")).unwrap();
        std::fs::write(raw.join("evaluation").join("a.json"), "{}").unwrap();
        let e = missing_dataset(&raw, "train", "tiny", &recipe).to_string();
        assert!(e.contains("holds raw data (1 task"), "{e}");
        let data_dir = format!("--data-dir {}", tmp.path().join("raw").display());
        assert!(e.contains(&data_dir), "{e}");
        assert!(!e.contains(&format!("--out {}", raw.display())), "{e}");

        let other = tmp.path().join("notes");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "mine").unwrap();
        let e = missing_dataset(&other, "test", "tiny", &recipe).to_string();
        assert!(e.contains("has no test/dataset.json"), "{e}");
        assert!(!e.contains(&format!("--out {}", other.display())), "{e}");
    }
}

/// The `data.*` keys given with `--set` (the recipe's overrides), e.g. `num_aug` for `data.num_aug=3`.
fn explicit_data_keys(recipe: &Recipe) -> Vec<String> {
    recipe
        .overrides
        .iter()
        .filter_map(|s| {
            let (key, _) = s.trim().strip_prefix("data.")?.split_once('=')?;
            Some(key.trim().to_string())
        })
        .collect()
}

/// Makes the recipe's data section agree with the settings the dataset was built with
/// ([`hrm_data::layout::BUILD_FILE`]), so that the run records, and `hrm solve` later uses, what the data
/// really is:
/// * a value set with `--set data.<key>=...` that differs from the dataset's is refused, naming both;
/// * any other difference (a preset's or recipe file's value) is taken from the dataset, and returned as a
///   note to print;
/// * a dataset without a build record (built before records, or by another tool) cannot be checked: a
///   `--set data.*` is then refused, anything else is kept as is.
pub fn agree_with_dataset(
    recipe: &mut Recipe,
    dataset_dir: &Path,
) -> Result<Vec<String>, RunError> {
    let explicit = explicit_data_keys(recipe);
    let record_path = dataset_dir.join(hrm_data::layout::BUILD_FILE);
    let Some(record) = hrm_data::layout::read_build_record(dataset_dir)? else {
        return match explicit.first() {
            None => Ok(Vec::new()),
            Some(key) => Err(RunError::config(
                &format!("data.{key}"),
                format!(
                    "{} records no build settings (no {}: built before hrm recorded them, or by another \
                     tool), so --set data.{key} cannot be checked against it. data.* describe how a dataset \
                     is built: drop the override, or build a dataset with it (hrm build-data --recipe ... \
                     --set data.{key}=...)",
                    dataset_dir.display(),
                    hrm_data::layout::BUILD_FILE
                ),
            )),
        };
    };
    let mut data =
        serde_json::to_value(&recipe.data).map_err(|e| RunError::json(&record_path, e))?;
    let mut notes = Vec::new();
    for (key, built) in &record {
        let Some(slot) = data.get_mut(key) else {
            continue; // a key this version's recipes do not have
        };
        if slot == built {
            continue;
        }
        if explicit.contains(key) {
            return Err(RunError::mismatch(
                &format!("data.{key}"),
                "--set",
                slot.clone(),
                format!("the dataset's build record {}", record_path.display()),
                built,
            ));
        }
        notes.push(format!(
            "data.{key} = {built} taken from the dataset ({}; the recipe said {slot})",
            record_path.display()
        ));
        *slot = built.clone();
    }
    recipe.data = serde_json::from_value(data).map_err(|e| RunError::json(&record_path, e))?;
    Ok(notes)
}

#[cfg(test)]
mod agree_tests {
    use super::*;

    #[test]
    fn the_recipe_takes_the_datasets_settings_and_a_conflicting_set_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let record = serde_json::json!({"task": "arc1", "num_aug": 4, "seed": 7, "canvas": 10});
        hrm_data::layout::write_build_record(dir, &record).unwrap();
        let mut recipe = Recipe::load("arc1-cpu", &[]).unwrap();
        let notes = agree_with_dataset(&mut recipe, dir).unwrap();
        assert_eq!((recipe.data.num_aug, recipe.data.seed), (4, 7));
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("data.num_aug = 4 taken from the dataset")),
            "{notes:?}"
        );
        assert!(
            !notes.iter().any(|n| n.contains("data.task")),
            "the task agrees: {notes:?}"
        );

        let mut recipe = Recipe::load("arc1-cpu", &["data.num_aug=99".to_string()]).unwrap();
        let e = agree_with_dataset(&mut recipe, dir)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.num_aug") && e.contains("99") && e.contains("4"),
            "{e}"
        );
        let mut same = Recipe::load("arc1-cpu", &["data.num_aug=4".to_string()]).unwrap();
        agree_with_dataset(&mut same, dir).unwrap();

        let bare = tmp.path().join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        let mut recipe = Recipe::load("arc1-cpu", &[]).unwrap();
        assert!(agree_with_dataset(&mut recipe, &bare).unwrap().is_empty());
        let mut recipe = Recipe::load("arc1-cpu", &["data.num_aug=3".to_string()]).unwrap();
        let e = agree_with_dataset(&mut recipe, &bare)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("records no build settings") && e.contains("data.num_aug"),
            "{e}"
        );
    }
}
