//! Reads the reference-built maze arrays (NumPy-written, 128-byte headers) with `hrm_data::npy`.

mod common;

use hrm_data::npy::{read_npy, read_npy_header, write_npy};

#[test]
fn reads_reference_maze_arrays() {
    let dir = common::data_dir().join("maze-30x30-hard-1k/train");
    let h = read_npy_header(&dir.join("all__inputs.npy")).unwrap();
    assert_eq!(h.data_offset, 128);
    assert_eq!(h.descr, "|u1");
    let inputs = read_npy::<u8>(&dir.join("all__inputs.npy")).unwrap();
    assert_eq!(inputs.shape, vec![1000, 900]);
    assert!(inputs.data.iter().all(|&t| (1..=4).contains(&t)));
    let labels = read_npy::<u8>(&dir.join("all__labels.npy")).unwrap();
    assert!(labels.data.contains(&5));
    let pi = read_npy::<i32>(&dir.join("all__puzzle_indices.npy")).unwrap();
    assert_eq!(pi.shape, vec![1001]);
    assert_eq!(pi.data, (0..=1000).collect::<Vec<i32>>());
    let ids = read_npy::<i32>(&dir.join("all__puzzle_identifiers.npy")).unwrap();
    assert!(ids.data.iter().all(|&x| x == 0));

    // Writing the arrays back reproduces the reference files byte for byte.
    let tmp = tempfile::tempdir().unwrap();
    write_npy(&tmp.path().join("i.npy"), &inputs.shape, &inputs.data).unwrap();
    write_npy(&tmp.path().join("p.npy"), &pi.shape, &pi.data).unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("i.npy")).unwrap(),
        std::fs::read(dir.join("all__inputs.npy")).unwrap()
    );
    assert_eq!(
        std::fs::read(tmp.path().join("p.npy")).unwrap(),
        std::fs::read(dir.join("all__puzzle_indices.npy")).unwrap()
    );
}
