//! Fuzzing the torch file reader (zip container, restricted unpickler, tensor records) with arbitrary bytes,
//! mutated and truncated golden checkpoints, mutated pickles inside a valid archive and the seed corpus in
//! `tests/fuzz-corpus/`: nothing may panic; every malformed input is an error naming the file, and a pickle naming
//! a foreign global (`os.system`, `builtins.eval`, ...) is refused with that global's name. Bounded (256 cases per
//! property) so the set runs in a few seconds under `cargo test`.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use hrm_torchfile::TorchFile;
use proptest::prelude::*;

const NAME: &str = "fuzz-input.pt";

/// Opens the bytes and reads every tensor; the error (if any) must name the file.
fn open_and_read(bytes: Vec<u8>, name: &str) -> Result<usize, String> {
    let result = (|| {
        let mut tf = TorchFile::from_reader(Cursor::new(bytes), Path::new(name))?;
        let names: Vec<String> = tf.tensors().map(|t| t.name.clone()).collect();
        let mut total = 0;
        for n in names {
            total += tf.read(&n)?.len();
        }
        Ok::<usize, hrm_torchfile::TorchFileError>(total)
    })();
    result.map_err(|e| {
        let e = e.to_string();
        assert!(e.contains(name), "error does not name the file: {e}");
        e
    })
}

fn golden_file() -> Vec<u8> {
    std::fs::read(hrm_testkit::golden_dir().join("pytorch/trm_tiny/step_2000")).unwrap()
}

/// The golden archive's entries (name, bytes), in order.
fn golden_entries() -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(Cursor::new(golden_file())).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            (f.name().unwrap().to_string(), b)
        })
        .collect()
}

fn rezip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (n, b) in entries {
        z.start_file(n.as_str(), o).unwrap();
        z.write_all(b).unwrap();
    }
    z.finish().unwrap().into_inner()
}

fn corpus() -> Vec<PathBuf> {
    hrm_testkit::corpus_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus"))
}

#[test]
fn seed_corpus_is_refused_naming_the_file() {
    let files = corpus();
    assert!(files.len() >= 25, "the corpus holds {} files", files.len());
    for path in files {
        let name = path.display().to_string();
        let r = open_and_read(std::fs::read(&path).unwrap(), &name);
        assert!(r.is_err(), "{name} was accepted");
    }
}

#[test]
fn foreign_globals_are_named() {
    for (file, global) in [
        ("os_system.pt", "`posix.system`"),
        ("builtins_eval.pt", "`__builtin__.eval`"),
        ("exec_protocol4.pt", "`builtins.eval`"),
        ("torch_load_global.pt", "`torch.load`"),
        ("inst_opcode.pt", "INST"),
        ("unknown_storage_global.pt", "`torch.FooStorageX`"),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-corpus")
            .join(file);
        let e = open_and_read(std::fs::read(&path).unwrap(), file).unwrap_err();
        assert!(e.contains(global), "{file}: {e}");
    }
}

#[test]
fn every_truncation_of_a_golden_file_is_refused() {
    let bytes = golden_file();
    let step = (bytes.len() / 97).max(1);
    for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        assert!(
            open_and_read(bytes[..cut].to_vec(), NAME).is_err(),
            "cut at {cut}"
        );
    }
    assert!(open_and_read(bytes, NAME).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = open_and_read(bytes, NAME);
    }

    #[test]
    fn corrupted_golden_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let mut bytes = golden_file();
        for (i, v) in flips {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        let _ = open_and_read(bytes, NAME);
    }

    #[test]
    fn corrupted_pickles_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut entries = golden_entries();
        let pkl = &mut entries[0].1;
        for (i, v) in flips {
            let at = i.index(pkl.len());
            pkl[at] = v;
        }
        if truncate {
            let n = cut.index(pkl.len());
            pkl.truncate(n);
        }
        let _ = open_and_read(rezip(&entries), NAME);
    }
}
