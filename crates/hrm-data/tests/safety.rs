//! Nothing lost, nothing silently wrong: temporary build folders of killed builds are removed and never
//! loaded, a failed build leaves the old dataset intact, identifiers agree with `dataset.json`, and the
//! dataset fingerprint follows the test split and identifiers.

use hrm_data::layout::{
    dataset_fingerprint, load_identifiers, load_split, remove_stale_temp_folders, temp_folder_name,
    temp_folder_owner, write_dataset, SplitBuilder, SplitData, TempKind,
};
use std::path::Path;

fn split(seq: usize, puzzles: usize, first_token: u8) -> SplitData {
    let mut b = SplitBuilder::new(seq);
    for p in 0..puzzles {
        let x: Vec<u8> = (0..seq)
            .map(|k| (first_token as usize + p + k) as u8 % 5 + 1)
            .collect();
        b.push_example(&x, &x);
        b.end_puzzle(p as i32 + 1);
        b.end_group();
    }
    b.finish(6, puzzles as u32 + 1)
}

fn ids(n: usize) -> Vec<String> {
    std::iter::once("<blank>".to_string())
        .chain((1..n).map(|i| format!("p{i}")))
        .collect()
}

fn write_small(out: &Path, first_token: u8) {
    write_dataset(out, &ids(4), &split(4, 3, 1), &split(4, 3, first_token)).unwrap();
}

/// The PID of a process that has exited (spawned, then waited for).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn make_folder(path: &Path) {
    std::fs::create_dir_all(path.join("train")).unwrap();
    std::fs::write(path.join("train/all__inputs.npy"), b"partial").unwrap();
}

#[test]
fn temp_folder_names_round_trip() {
    let name = temp_folder_name("arc1.v2", TempKind::Building, 1234);
    assert_eq!(name, ".arc1.v2.building-1234");
    assert_eq!(
        temp_folder_owner(&name),
        Some(("arc1.v2", TempKind::Building, 1234))
    );
    assert_eq!(
        temp_folder_owner(".ds.old-7"),
        Some(("ds", TempKind::Old, 7))
    );
    for other in [
        "ds",
        ".ds",
        ".ds.building-",
        ".ds.building-12x",
        "..building-3",
        ".ds.tmp",
    ] {
        assert_eq!(temp_folder_owner(other), None, "{other}");
    }
}

#[test]
fn a_build_removes_the_litter_of_dead_builds_and_keeps_live_ones() {
    if !Path::new("/proc/self").exists() {
        eprintln!("no /proc: liveness cannot be told, nothing is removed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let dead = dead_pid();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let live = sleeper.id();
    let dead_building = dir
        .path()
        .join(temp_folder_name("ds", TempKind::Building, dead));
    let dead_old = dir.path().join(temp_folder_name("ds", TempKind::Old, dead));
    let live_building = dir
        .path()
        .join(temp_folder_name("ds", TempKind::Building, live));
    let other_dataset = dir
        .path()
        .join(temp_folder_name("other", TempKind::Building, dead));
    for f in [&dead_building, &dead_old, &live_building, &other_dataset] {
        make_folder(f);
    }
    write_small(&out, 2);
    assert!(!dead_building.exists(), "a dead build's folder is removed");
    assert!(!dead_old.exists(), "a dead build's old copy is removed");
    assert!(live_building.exists(), "a live build's folder is kept");
    assert!(
        other_dataset.exists(),
        "another output's folders are left to its own builds"
    );
    load_split(&out, "test").unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // Our own PID is alive: kept by the clean-up.
    let ours = dir
        .path()
        .join(temp_folder_name("ds", TempKind::Old, std::process::id()));
    make_folder(&ours);
    let removed = remove_stale_temp_folders(dir.path(), "ds").unwrap();
    assert!(ours.exists());
    assert!(!removed.contains(&ours));
}

#[test]
fn a_temporary_build_folder_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    // A complete dataset, but under a temporary folder's name (as a killed build leaves it after its last file).
    let tmp = dir
        .path()
        .join(temp_folder_name("ds", TempKind::Building, dead_pid()));
    write_small(&tmp, 2);
    for err in [
        load_split(&tmp, "test").unwrap_err().to_string(),
        load_identifiers(&tmp).unwrap_err().to_string(),
        hrm_data::layout::load_metadata(&tmp, "test")
            .unwrap_err()
            .to_string(),
        hrm_data::layout::load_puzzle_index(&tmp, "test")
            .unwrap_err()
            .to_string(),
        dataset_fingerprint(&tmp).unwrap_err().to_string(),
    ] {
        assert!(err.contains("temporary folder of a dataset build"), "{err}");
        assert!(err.contains("`ds`"), "{err}");
    }
}

#[test]
fn a_failed_build_over_an_existing_dataset_leaves_it_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    write_small(&out, 2);
    let before = load_split(&out, "test").unwrap();
    // A build that fails at commit (test split with an identifier outside identifiers.json).
    let bad_test = split(4, 5, 3);
    let err = write_dataset(&out, &ids(4), &split(4, 3, 1), &bad_test).unwrap_err();
    assert!(err.to_string().contains("puzzle_identifiers"), "{err}");
    assert_eq!(load_split(&out, "test").unwrap(), before);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no litter"
    );
}

#[test]
fn identifier_count_must_match_identifiers_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    write_small(&out, 2);
    std::fs::write(
        out.join("identifiers.json"),
        r#"["<blank>","p1","p2","p3","extra"]"#,
    )
    .unwrap();
    let err = load_split(&out, "train").unwrap_err().to_string();
    assert!(err.contains("num_puzzle_identifiers"), "{err}");
    assert!(err.contains("identifiers.json"), "{err}");
    assert!(err.contains("dataset.json"), "{err}");
    assert!(err.contains("4 in") && err.contains("5 names"), "{err}");
}

#[test]
fn fingerprint_follows_the_test_split_and_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    write_small(&a, 2);
    write_small(&b, 2);
    write_small(&c, 3);
    let fa = dataset_fingerprint(&a).unwrap();
    assert!(fa.starts_with("sha256:") && fa.len() == 7 + 64, "{fa}");
    assert_eq!(
        fa,
        dataset_fingerprint(&b).unwrap(),
        "same content, same fingerprint"
    );
    assert_ne!(fa, dataset_fingerprint(&c).unwrap(), "another test split");
    std::fs::write(
        b.join("identifiers.json"),
        r#"["<blank>","p1","p2","renamed"]"#,
    )
    .unwrap();
    assert_ne!(fa, dataset_fingerprint(&b).unwrap(), "other identifiers");
}

#[test]
fn absurd_num_aug_is_refused_before_any_work() {
    use hrm_data::budget::{check_disk_space, check_num_aug, BuildPlan, MAX_NUM_AUG};
    check_num_aug(MAX_NUM_AUG).unwrap();
    let err = check_num_aug(100_000_000_000).unwrap_err().to_string();
    assert!(
        err.contains("num_aug") && err.contains("100000000000") && err.contains("10000"),
        "{err}"
    );

    // Every builder refuses it before reading its inputs (the input paths here do not exist).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let mut arc = hrm_data::ArcBuildConfig::arc1(&dir.path().join("missing"));
    arc.num_aug = 100_000_000_000;
    let err = hrm_data::build_arc(&arc, &out).unwrap_err().to_string();
    assert!(err.contains("num_aug"), "{err}");
    let mut sudoku = hrm_data::sudoku::SudokuBuildConfig::extreme_1k(&dir.path().join("missing"));
    sudoku.num_aug = 100_000_000_000;
    let err = hrm_data::sudoku::build_sudoku(&sudoku, &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("num_aug"), "{err}");
    let missing = dir.path().join("missing.csv");
    let err =
        hrm_data::sudoku::build_sudoku_csv(&missing, &missing, 0, 100_000_000_000, 0, 0, &out)
            .unwrap_err()
            .to_string();
    assert!(err.contains("num_aug"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // A plan larger than the free space is refused with its numbers; a small one passes.
    let huge = BuildPlan {
        rows: 1 << 60,
        seq_len: 900,
    };
    if hrm_data::budget::available_space(&out).is_some() {
        let err = check_disk_space(&out, &huge).unwrap_err().to_string();
        assert!(
            err.contains(&huge.rows.to_string()) && err.contains("free"),
            "{err}"
        );
        assert!(err.contains(&huge.bytes().to_string()), "{err}");
    }
    check_disk_space(
        &out,
        &BuildPlan {
            rows: 10,
            seq_len: 81,
        },
    )
    .unwrap();
}

#[test]
fn a_build_larger_than_the_free_space_is_refused_up_front() {
    // A plan just past the free space of the temporary folder's file system is refused.
    let dir = tempfile::tempdir().unwrap();
    let free = hrm_data::budget::available_space(dir.path());
    let Some(free) = free else {
        eprintln!("free space cannot be told here; skipping");
        return;
    };
    let plan = hrm_data::budget::BuildPlan {
        rows: u128::from(free) / 81 + 1,
        seq_len: 81,
    };
    assert!(hrm_data::budget::check_disk_space(&dir.path().join("x"), &plan).is_err());
}
