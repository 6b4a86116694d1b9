//! The official-format checkpoints of `../shared/golden/pytorch/` (written by torch 2.11 through the official
//! trainers' classes) read without Python: every key of `keys.json`, every tensor bitwise equal to the golden
//! safetensors weights (the bf16 `H_init`/`L_init` equal to the fp32 ones rounded to nearest even), and the writer's
//! output read back unchanged. Non-contiguous strides are gathered, storages too short are refused.

use std::io::Cursor;
use std::path::PathBuf;

use hrm_torchfile::{write_state_dict, DType, TensorOut, TorchFile};

fn golden(rel: &str) -> PathBuf {
    hrm_testkit::golden_dir().join(rel)
}

fn keys(set: &str) -> Vec<String> {
    let text = std::fs::read_to_string(golden("pytorch/keys.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[set]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn bf16_round(x: f32) -> [u8; 2] {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    (rounded as u16).to_le_bytes()
}

/// Opens `file`, checks its keys against `keys.json`'s `set`, and compares every tensor with `weights`.
fn check(file: &str, set: &str, weights: &str, bf16_inits: bool) {
    let mut tf = TorchFile::open(&golden(file)).unwrap();
    let mut names: Vec<String> = tf.tensors().map(|t| t.name.clone()).collect();
    names.sort();
    assert_eq!(names, keys(set), "{file}");
    let reference = hrm_testkit::read_golden(weights);
    assert_eq!(reference.len(), names.len());
    for (name, want) in &reference {
        let key = format!("_orig_mod.model.{name}");
        let info = tf.tensors().find(|t| t.name == key).unwrap().clone();
        assert_eq!(info.shape, want.shape, "{key}");
        let got = tf.read(&key).unwrap();
        let init = name.ends_with("H_init") || name.ends_with("L_init");
        if bf16_inits && init {
            assert_eq!(info.dtype, DType::BF16, "{key}");
            let rounded: Vec<u8> = want
                .bytes
                .chunks_exact(4)
                .flat_map(|b| bf16_round(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect();
            assert_eq!(got, rounded, "{key}: bf16 bytes");
        } else {
            assert_eq!(info.dtype, DType::F32, "{key}");
            assert_eq!(got, want.bytes, "{key}: bytes");
        }
    }
}

#[test]
fn hrm_tiny_reads_bitwise() {
    check(
        "pytorch/hrm_tiny/step_1000",
        "hrm",
        "tiny_weights.safetensors",
        false,
    );
}

#[test]
fn hrm_tiny_bf16_keeps_bf16_inits() {
    check(
        "pytorch/hrm_tiny_bf16/step_1000",
        "hrm_bf16",
        "tiny_weights.safetensors",
        true,
    );
}

#[test]
fn trm_tiny_reads_bitwise() {
    check(
        "pytorch/trm_tiny/step_2000",
        "trm",
        "trm_weights.safetensors",
        false,
    );
}

#[test]
fn written_files_read_back_and_have_torchs_entries() {
    let mut tf = TorchFile::open(&golden("pytorch/hrm_tiny_bf16/step_1000")).unwrap();
    let infos: Vec<_> = tf.tensors().cloned().collect();
    let tensors: Vec<TensorOut> = infos
        .iter()
        .map(|i| TensorOut {
            name: i.name.clone(),
            dtype: i.dtype,
            shape: i.shape.iter().map(|&d| d as u64).collect(),
            data: tf.read(&i.name).unwrap(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("step_7");
    write_state_dict(&path, &tensors).unwrap();
    let mut back = TorchFile::open(&path).unwrap();
    assert_eq!(
        back.tensors().cloned().collect::<Vec<_>>(),
        tensors_infos(&tensors)
    );
    for t in &tensors {
        assert_eq!(back.read(&t.name).unwrap(), t.data, "{}", t.name);
    }
    // The same entries as torch writes, in its order (under the file's own folder name).
    let names = |p: &std::path::Path| -> Vec<String> {
        let mut z = zip::ZipArchive::new(std::fs::File::open(p).unwrap()).unwrap();
        (0..z.len())
            .map(|i| {
                let n = z.by_index(i).unwrap().name().unwrap().to_string();
                n.split_once('/').unwrap().1.to_string()
            })
            .collect()
    };
    assert_eq!(
        names(&path),
        names(&golden("pytorch/hrm_tiny_bf16/step_1000"))
    );
    // Deterministic: the same tensors give the same bytes.
    let again = dir.path().join("again/step_7");
    std::fs::create_dir_all(again.parent().unwrap()).unwrap();
    write_state_dict(&again, &tensors).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

fn tensors_infos(t: &[TensorOut]) -> Vec<hrm_torchfile::TensorInfo> {
    t.iter()
        .map(|t| hrm_torchfile::TensorInfo {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.iter().map(|&d| d as usize).collect(),
        })
        .collect()
}

/// A `torch.save` archive with one pickle and the given storages (test-only builder of odd files).
pub fn archive(pkl: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("f/data.pkl", o).unwrap();
    z.write_all(pkl).unwrap();
    z.start_file("f/byteorder", o).unwrap();
    z.write_all(b"little").unwrap();
    for (k, b) in storages {
        z.start_file(format!("f/data/{k}"), o).unwrap();
        z.write_all(b).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// The pickle of one f32 tensor on storage `0` of `numel` elements with the given offset, size and stride.
fn one_tensor(numel: u8, offset: u8, size: [u8; 2], stride: [u8; 2]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(b"ccollections\nOrderedDict\nq\x00)R(X\x01\x00\x00\x00w");
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
    p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK");
    p.extend([numel, b't', b'Q', b'K', offset]);
    p.extend([
        b'K', size[0], b'K', size[1], 0x86, b'K', stride[0], b'K', stride[1], 0x86,
    ]);
    p.extend([0x89, b'h', 0, b')', b'R', b't', b'R', b'u', b'.']);
    p
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn strided_tensors_are_gathered_row_major() {
    // A 2x3 view with stride (1, 2) at offset 1 of a 7-element storage: element (i, j) = storage[1 + i + 2j].
    let storage: Vec<f32> = (0..7).map(|x| x as f32).collect();
    let bytes = archive(
        &one_tensor(7, 1, [2, 3], [1, 2]),
        &[("0", f32_bytes(&storage))],
    );
    let mut tf = TorchFile::from_reader(Cursor::new(bytes), "t".as_ref()).unwrap();
    assert_eq!(tf.read("w").unwrap(), f32_bytes(&[1., 3., 5., 2., 4., 6.]));
}

#[test]
fn storages_shorter_than_size_times_stride_are_refused() {
    // 2x3 with stride (3, 1) at offset 1 reaches element 6 of a 6-element storage.
    let bytes = archive(
        &one_tensor(6, 1, [2, 3], [3, 1]),
        &[("0", f32_bytes(&[0.; 6]))],
    );
    let e = TorchFile::from_reader(Cursor::new(bytes), "t.pt".as_ref())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.pt") && e.contains("`w`") && e.contains("reaches element 6"),
        "{e}"
    );
    // The entry holds fewer bytes than the persistent id's element count.
    let bytes = archive(
        &one_tensor(6, 0, [2, 3], [3, 1]),
        &[("0", f32_bytes(&[0.; 5]))],
    );
    let e = TorchFile::from_reader(Cursor::new(bytes), "t.pt".as_ref())
        .unwrap_err()
        .to_string();
    assert!(e.contains("has 20 bytes") && e.contains("need 24"), "{e}");
}
