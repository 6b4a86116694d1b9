//! Fuzzing the `.npy` reader (header parser, whole-array reader, row reader) with arbitrary bytes, mutated
//! valid files and the seed corpus in `tests/fuzz-corpus/npy/`: nothing may panic; malformed input is an
//! error naming the file. Bounded (256 cases per property) so the set runs in a few seconds under `cargo test`.

use hrm_data::npy::{read_npy, read_npy_header, write_npy, NpyRowReader};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// Every reader on one file; returns whether each failed with an error (never panics, or the test fails).
fn read_all_ways(path: &Path) -> Vec<Result<(), String>> {
    let mut out = vec![
        read_npy_header(path).map(drop).map_err(|e| e.to_string()),
        read_npy::<u8>(path).map(drop).map_err(|e| e.to_string()),
        read_npy::<i32>(path).map(drop).map_err(|e| e.to_string()),
        read_npy::<f32>(path).map(drop).map_err(|e| e.to_string()),
    ];
    match NpyRowReader::<u8>::open(path) {
        Ok(mut r) => {
            let rows = r.rows();
            out.push(r.row(0).map(drop).map_err(|e| e.to_string()));
            out.push(
                r.row(rows.saturating_sub(1))
                    .map(drop)
                    .map_err(|e| e.to_string()),
            );
            out.push(r.row(rows).map(drop).map_err(|e| e.to_string()));
        }
        Err(e) => out.push(Err(e.to_string())),
    }
    for r in &out {
        if let Err(e) = r {
            assert!(
                e.contains(&path.display().to_string()),
                "error does not name the file: {e}"
            );
        }
    }
    out
}

fn valid_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.npy");
    write_npy::<u8>(&p, &[2, 3], &[1, 2, 3, 4, 5, 6]).unwrap();
    std::fs::read(p).unwrap()
}

fn corpus() -> Vec<PathBuf> {
    hrm_testkit::corpus_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/npy"))
}

#[test]
fn seed_corpus_is_refused_without_panics() {
    let files = corpus();
    assert!(files.len() >= 20, "the corpus holds {} files", files.len());
    for path in files {
        let results = read_all_ways(&path);
        // Every corpus file is malformed for every typed reader (u8 and i32 and f32 cannot all fit).
        assert!(
            results.iter().skip(1).any(Result::is_err),
            "{} was accepted by every reader",
            path.display()
        );
    }
}

#[test]
fn the_valid_file_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.npy");
    std::fs::write(&p, valid_file()).unwrap();
    assert_eq!(read_npy::<u8>(&p).unwrap().data, [1, 2, 3, 4, 5, 6]);
}

/// A mutation of a byte string: overwrite, insert, delete or truncate at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len().max(1);
    match e {
        Edit::Set(i, b) => {
            if !bytes.is_empty() {
                bytes[i % n] = *b;
            }
        }
        Edit::Insert(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Edit::Delete(i, k) => {
            let at = i % n;
            let end = (at + k).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
        Edit::Truncate(i) => bytes.truncate(i % n),
    }
}

/// Header text built from pieces a header parser must cope with.
fn header_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("'descr'".to_string()),
        Just("'fortran_order'".to_string()),
        Just("'shape'".to_string()),
        Just(": ".to_string()),
        Just(", ".to_string()),
        Just("'|u1'".to_string()),
        Just("'<i4'".to_string()),
        Just("True".to_string()),
        Just("False".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        (0u64..u64::MAX).prop_map(|n| n.to_string()),
        "[ -~]{0,6}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn with_header(text: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(text.len().min(u16::MAX as usize) as u16).to_le_bytes());
    b.extend_from_slice(text.as_bytes());
    b.extend_from_slice(data);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        std::fs::write(&p, &bytes).unwrap();
        read_all_ways(&p);
    }

    #[test]
    fn mutated_valid_files_never_panic(edits in proptest::collection::vec(edit(), 1..6)) {
        let mut bytes = valid_file();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        std::fs::write(&p, &bytes).unwrap();
        read_all_ways(&p);
    }

    #[test]
    fn generated_headers_never_panic(text in header_text(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.npy");
        std::fs::write(&p, with_header(&text, &data)).unwrap();
        read_all_ways(&p);
    }
}
