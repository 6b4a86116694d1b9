//! Layout tests: round trips, the reference maze folder, and every disagreement `load_split` must refuse.

mod common;

use hrm_data::layout::{load_identifiers, load_split, write_dataset, SplitBuilder, SplitData};
use hrm_data::npy::{read_npy, write_npy};
use std::path::Path;

fn small_split(seq: usize, groups: &[&[usize]], id0: i32) -> SplitData {
    let mut b = SplitBuilder::new(seq);
    let mut id = id0;
    let mut tok = 1u8;
    for g in groups {
        for &n in *g {
            for _ in 0..n {
                let x: Vec<u8> = (0..seq).map(|k| (tok as usize + k) as u8 % 5 + 1).collect();
                let y: Vec<u8> = x.iter().map(|&v| if v == 3 { 0 } else { v }).collect();
                b.push_example(&x, &y);
                tok = tok.wrapping_add(1);
            }
            b.end_puzzle(id);
            id += 1;
        }
        b.end_group();
    }
    b.finish(6, 8)
}

fn ids(n: usize) -> Vec<String> {
    std::iter::once("<blank>".to_string())
        .chain((1..n).map(|i| format!("p{i}")))
        .collect()
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let train = small_split(4, &[&[2, 1], &[3]], 1);
    let test = small_split(4, &[&[1, 1, 1]], 1);
    write_dataset(&out, &ids(8), &train, &test).unwrap();
    let t = load_split(&out, "train").unwrap();
    assert_eq!(t, train);
    assert_eq!(t.metadata.mean_puzzle_examples, 2.0);
    assert_eq!(t.metadata.total_groups, 2);
    assert_eq!(load_split(&out, "test").unwrap(), test);
    assert_eq!(load_identifiers(&out).unwrap(), ids(8));
    // Nothing else is left next to the dataset.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Writing again replaces the dataset.
    let test2 = small_split(4, &[&[1]], 2);
    write_dataset(&out, &ids(8), &train, &test2).unwrap();
    assert_eq!(load_split(&out, "test").unwrap(), test2);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn loads_reference_maze_folder() {
    let dir = common::data_dir().join("maze-30x30-hard-1k");
    for split in ["train", "test"] {
        let d = load_split(&dir, split).unwrap();
        assert_eq!(d.num_examples(), 1000);
        assert_eq!(d.num_puzzles(), 1000);
        assert_eq!(d.num_groups(), 1000);
        assert_eq!(d.metadata.vocab_size, 6);
        assert_eq!(d.metadata.seq_len, 900);
        assert_eq!(d.metadata.num_puzzle_identifiers, 1);
    }
    assert_eq!(load_identifiers(&dir).unwrap(), vec!["<blank>".to_string()]);
}

/// Writes a valid dataset, applies `corrupt` to its train folder, and returns the load error text.
fn load_error(corrupt: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let train = small_split(4, &[&[2, 1], &[3]], 1);
    let test = small_split(4, &[&[1]], 1);
    write_dataset(&out, &ids(8), &train, &test).unwrap();
    corrupt(&out.join("train"));
    load_split(&out, "train").unwrap_err().to_string()
}

fn edit_json(dir: &Path, key: &str, value: serde_json::Value) {
    let p = dir.join("dataset.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v[key] = value;
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn refuses_disagreeing_arrays() {
    let e = load_error(|d| edit_json(d, "vocab_size", 3.into()));
    assert!(
        e.contains("all__inputs.npy") && e.contains("vocab_size"),
        "{e}"
    );
    let e = load_error(|d| edit_json(d, "total_groups", 3.into()));
    assert!(
        e.contains("all__group_indices.npy") || e.contains("dataset.json"),
        "{e}"
    );
    let e = load_error(|d| edit_json(d, "seq_len", 5.into()));
    assert!(e.contains("all__inputs.npy") && e.contains("shape"), "{e}");
    let e = load_error(|d| edit_json(d, "mean_puzzle_examples", 1.5.into()));
    assert!(
        e.contains("dataset.json") && e.contains("mean_puzzle_examples"),
        "{e}"
    );
    let e = load_error(|d| edit_json(d, "num_puzzle_identifiers", 2.into()));
    assert!(e.contains("all__puzzle_identifiers.npy"), "{e}");
    let e = load_error(|d| std::fs::write(d.join("dataset.json"), "{not json").unwrap());
    assert!(
        e.contains("dataset.json") && e.contains("invalid JSON"),
        "{e}"
    );
    let e = load_error(|d| {
        write_npy(&d.join("all__puzzle_indices.npy"), &[4], &[0i32, 3, 2, 6]).unwrap()
    });
    assert!(
        e.contains("all__puzzle_indices.npy") && e.contains("decrease"),
        "{e}"
    );
    let e = load_error(|d| {
        write_npy(&d.join("all__puzzle_indices.npy"), &[4], &[0i32, 2, 3, 5]).unwrap()
    });
    assert!(
        e.contains("all__puzzle_indices.npy") && e.contains("last offset"),
        "{e}"
    );
    let e =
        load_error(|d| write_npy(&d.join("all__group_indices.npy"), &[3], &[1i32, 2, 3]).unwrap());
    assert!(
        e.contains("all__group_indices.npy") && e.contains("first offset"),
        "{e}"
    );
    let e = load_error(|d| {
        let a = read_npy::<u8>(&d.join("all__labels.npy")).unwrap();
        write_npy(&d.join("all__labels.npy"), &[5, 4], &a.data[..20]).unwrap()
    });
    assert!(e.contains("all__labels.npy"), "{e}");
    let e = load_error(|d| {
        write_npy(&d.join("all__puzzle_identifiers.npy"), &[3], &[1i64, 2, 3]).unwrap()
    });
    assert!(
        e.contains("all__puzzle_identifiers.npy") && e.contains("dtype"),
        "{e}"
    );
    let e = load_error(|d| std::fs::remove_file(d.join("all__inputs.npy")).unwrap());
    assert!(e.contains("all__inputs.npy"), "{e}");
}

#[test]
fn write_refuses_bad_identifiers_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let train = small_split(4, &[&[1]], 1);
    let test = small_split(4, &[&[1]], 1);
    // Identifier 1 needs at least two names.
    let e = write_dataset(&out, &ids(1), &train, &test)
        .unwrap_err()
        .to_string();
    assert!(e.contains("puzzle_identifiers"), "{e}");
    let e = write_dataset(&out, &["x".to_string(), "y".to_string()], &train, &test)
        .unwrap_err()
        .to_string();
    assert!(e.contains("identifiers.json"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn streaming_writer_refuses_tokens_outside_the_vocabulary_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let mut w = hrm_data::layout::DatasetWriter::create(&out, 3).unwrap();
    let (train, test) = w.splits();
    train.push_example(&[1, 2, 3], &[1, 0, 7]).unwrap();
    train.end_puzzle(1);
    train.end_group();
    test.push_example(&[1, 2, 3], &[1, 0, 3]).unwrap();
    test.end_puzzle(1);
    test.end_group();
    // Label token 7 of train example 0, position 2, is not below vocab_size 6.
    let e = w.commit(&ids(2), 6).unwrap_err().to_string();
    assert!(
        e.contains("all__labels.npy") && e.contains("token 7"),
        "{e}"
    );
    assert!(e.contains("position 2"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
