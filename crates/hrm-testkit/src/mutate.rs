//! Byte-level mutations of valid files for the fuzz tests: overwrite a byte, delete a run, or splice in a
//! fragment, applied with positions taken modulo the current length (so every edit applies).

use proptest::prelude::*;

/// One mutation of a file's bytes.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Overwrite the byte at this position.
    Set(usize, u8),
    /// Delete this many bytes from this position.
    Delete(usize, usize),
    /// Insert this fragment at this position.
    Splice(usize, &'static str),
}

/// JSON fragments that break structure, types and ranges.
pub const JSON_FRAGMENTS: [&str; 16] = [
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "-1",
    "10",
    "1e400",
    "null",
    "[]",
    "[[]]",
    "\"train\"",
    "\"output\"",
    "99999999999999999999",
];

/// A random edit, splicing one of `fragments`.
pub fn edit(fragments: &'static [&'static str]) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), 1usize..12).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), proptest::sample::select(fragments.to_vec()))
            .prop_map(|(i, f)| Edit::Splice(i, f)),
    ]
}

/// A random edit at a position below `limit` (a binary file's header), splicing one of `fragments`.
pub fn edit_before(
    fragments: &'static [&'static str],
    limit: usize,
) -> impl Strategy<Value = Edit> {
    let limit = limit.max(1);
    edit(fragments).prop_map(move |e| match e {
        Edit::Set(i, b) => Edit::Set(i % limit, b),
        Edit::Delete(i, n) => Edit::Delete(i % limit, n),
        Edit::Splice(i, f) => Edit::Splice(i % limit, f),
    })
}

/// Applies `e` to `bytes`.
pub fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    let n = bytes.len().max(1);
    match e {
        Edit::Set(i, b) => {
            if !bytes.is_empty() {
                bytes[i % n] = *b;
            }
        }
        Edit::Delete(i, k) => {
            let at = i % n;
            let end = (at + k).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
        Edit::Splice(i, f) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, f.bytes());
        }
    }
}

/// `bytes` after every edit of `edits`.
pub fn mutated(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for e in edits {
        apply(&mut out, e);
    }
    out
}
