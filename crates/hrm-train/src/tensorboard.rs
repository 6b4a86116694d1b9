//! TensorBoard event files: the scalars of `metrics.jsonl`, as TensorFlow's `tf.summary` writes them (the
//! `Event` / `Summary` protobufs of `tensorflow/core/util/event.proto`, encoded with `prost`, in TFRecord
//! framing with masked CRC-32C checksums), so `tensorboard --logdir runs/` shows every run.
//!
//! A run folder holds one events file, `events.out.tfevents.<unix time>.hrm`, that mirrors `metrics.jsonl`:
//! when a run starts or resumes, the file is written anew from the lines kept, then every logged line is
//! appended and flushed. Speed (`perf/samples_per_sec`, `perf/sec_per_step`) goes to the events file only (it
//! differs between identical runs, so `metrics.jsonl` leaves it out); a resumed run keeps only its own.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The prefix of an events file name (what TensorBoard looks for).
pub const EVENTS_PREFIX: &str = "events.out.tfevents.";

#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// TFRecord's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, the data, the data's masked CRC.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Appends scalar events to one events file.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl EventWriter {
    /// Replaces the events files of `dir` with a new one holding the file-version event and `lines` (each a
    /// step and its scalars, e.g. the kept lines of `metrics.jsonl`). The new file is complete before the old
    /// ones are removed.
    pub fn recreate(
        dir: &Path,
        lines: &[(u64, Vec<(String, f64)>)],
    ) -> std::io::Result<EventWriter> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("{EVENTS_PREFIX}{stamp}.hrm");
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut body = record(&prost::Message::encode_to_vec(&Event {
            wall_time: now(),
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        }));
        for (step, values) in lines {
            body.extend(scalars_record(*step, values));
        }
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &path)?;
        for e in std::fs::read_dir(dir)?.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with(EVENTS_PREFIX) && n != name {
                std::fs::remove_file(e.path())?;
            }
        }
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok(EventWriter { path, file })
    }

    /// The events file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event with the scalars of a step and flushes it.
    pub fn add_scalars(&mut self, step: u64, values: &[(String, f64)]) -> std::io::Result<()> {
        self.file.write_all(&scalars_record(step, values))?;
        self.file.flush()
    }
}

fn scalars_record(step: u64, values: &[(String, f64)]) -> Vec<u8> {
    let value = values
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(tag, v)| SummaryValue {
            tag: tag.clone(),
            simple_value: Some(*v as f32),
        })
        .collect();
    record(&prost::Message::encode_to_vec(&Event {
        wall_time: now(),
        step: step as i64,
        file_version: None,
        summary: Some(Summary { value }),
    }))
}

/// One scalar read back from an events file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The step.
    pub step: i64,
    /// The tag, e.g. `train/lm_loss`.
    pub tag: String,
    /// The value.
    pub value: f32,
}

/// Reads every scalar of an events file, checking the framing and both checksums of every record; also returns
/// the file version string.
pub fn read_scalars(path: &Path) -> Result<(String, Vec<Scalar>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |at: usize, what: &str| format!("{} at byte {at}: {what}", path.display());
    let (mut at, mut version, mut out) = (0usize, String::new(), Vec::new());
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 12)
            .ok_or_else(|| bad(at, "truncated header"))?;
        let len_bytes: [u8; 8] = head[..8].try_into().map_err(|_| bad(at, "header"))?;
        let crc = u32::from_le_bytes(head[8..12].try_into().map_err(|_| bad(at, "header"))?);
        if crc != masked_crc(&len_bytes) {
            return Err(bad(at, "length checksum mismatch"));
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| bad(at, "length"))?;
        let end = at
            .checked_add(12)
            .and_then(|a| a.checked_add(len))
            .filter(|e| e + 4 <= bytes.len())
            .ok_or_else(|| bad(at, "truncated record"))?;
        let data = &bytes[at + 12..end];
        let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().map_err(|_| bad(at, "crc"))?);
        if crc != masked_crc(data) {
            return Err(bad(at, "data checksum mismatch"));
        }
        let event: Event = prost::Message::decode(data).map_err(|e| bad(at, &e.to_string()))?;
        if let Some(v) = event.file_version {
            version = v;
        }
        for v in event.summary.map(|s| s.value).unwrap_or_default() {
            if let Some(value) = v.simple_value {
                out.push(Scalar {
                    step: event.step,
                    tag: v.tag,
                    value,
                });
            }
        }
        at = end + 4;
    }
    Ok((version, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // TensorFlow's crc32c.Mask of the CRC-32C of b"123456789" (0xe3069283).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn events_round_trip_and_replace_older_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(format!("{EVENTS_PREFIX}1.old")), b"x").unwrap();
        let kept = vec![(1, vec![("train/lm_loss".to_string(), 2.5)])];
        let mut w = EventWriter::recreate(tmp.path(), &kept).unwrap();
        w.add_scalars(
            2,
            &[
                ("train/lm_loss".into(), 1.25),
                ("eval/count".into(), f64::NAN),
            ],
        )
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "the older file is gone");
        let (version, scalars) = read_scalars(w.path()).unwrap();
        assert_eq!(version, "brain.Event:2");
        let got: Vec<(i64, &str, f32)> = scalars
            .iter()
            .map(|s| (s.step, s.tag.as_str(), s.value))
            .collect();
        assert_eq!(
            got,
            vec![(1, "train/lm_loss", 2.5), (2, "train/lm_loss", 1.25)]
        );
        // A flipped byte is caught by the checksum.
        let mut bytes = std::fs::read(w.path()).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        std::fs::write(w.path(), &bytes).unwrap();
        assert!(read_scalars(w.path()).unwrap_err().contains("checksum"));
    }
}
