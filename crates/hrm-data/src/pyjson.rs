//! JSON values in Python's model (objects keep their key order, integers and floats stay apart) and
//! Python's `json.dump` byte format with its defaults: separators `", "` and `": "`, `ensure_ascii`, floats
//! as `repr`. TRM's builder writes its JSON files this way (`dataset/build_arc_dataset.py`, `json.dump`).

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt::Write as _;

/// A JSON value as Python's `json.load` returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `null` (`None`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits, signed or not.
    Int(i128),
    /// A number with a fraction or an exponent.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<PyValue>),
    /// An object (a `dict`): keys in first-insertion order; a repeated key keeps its first place and its
    /// last value, as in Python.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// The value of `key` in a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` in a dict as Python's `d[key] = value` does (in place when present, else appended);
    /// false when `self` is not a dict.
    pub fn set(&mut self, key: &str, value: PyValue) -> bool {
        let PyValue::Dict(entries) = self else {
            return false;
        };
        dict_insert(entries, key.to_string(), value);
        true
    }

    /// The name of the value's JSON type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            PyValue::Null => "null",
            PyValue::Bool(_) => "a boolean",
            PyValue::Int(_) => "an integer",
            PyValue::Float(_) => "a float",
            PyValue::Str(_) => "a string",
            PyValue::List(_) => "a list",
            PyValue::Dict(_) => "an object",
        }
    }
}

fn dict_insert(entries: &mut Vec<(String, PyValue)>, key: String, value: PyValue) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => entries.push((key, value)),
    }
}

impl<'de> serde::Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PyVisitor)
    }
}

struct PyVisitor;

impl<'de> Visitor<'de> for PyVisitor {
    type Value = PyValue;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<PyValue, E> {
        Ok(PyValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<PyValue, E> {
        Ok(PyValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<PyValue, E> {
        Ok(PyValue::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<PyValue, E> {
        Ok(PyValue::Int(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<PyValue, E> {
        Ok(PyValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<PyValue, E> {
        Ok(PyValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<PyValue, E> {
        Ok(PyValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<PyValue>()? {
            out.push(v);
        }
        Ok(PyValue::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, PyValue>()? {
            dict_insert(&mut out, k, v);
        }
        Ok(PyValue::Dict(out))
    }
}

/// `json.dumps(value)` with Python's defaults.
pub fn dumps(value: &PyValue) -> String {
    let mut out = String::new();
    dump_into(value, &mut out);
    out
}

fn dump_into(value: &PyValue, out: &mut String) {
    match value {
        PyValue::Null => out.push_str("null"),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(x) => out.push_str(&float_repr(*x)),
        PyValue::Str(s) => push_str_literal(s, out),
        PyValue::List(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump_into(v, out);
            }
            out.push(']');
        }
        PyValue::Dict(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_str_literal(k, out);
                out.push_str(": ");
                dump_into(v, out);
            }
            out.push('}');
        }
    }
}

/// A string literal as `json.dumps` writes it with `ensure_ascii=True`: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
/// `\f`, and `\uXXXX` (lowercase hex, surrogate pairs above U+FFFF) for every other character outside
/// `' '..='~'`.
pub fn push_str_literal(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr` of a float (as `json.dumps` writes it): the shortest digits that round-trip, in
/// positional notation when the decimal exponent is in -4..16 (with `.0` for an integral value), else
/// `d.ddde+XX` / `de-XX` with at least two exponent digits; `NaN`, `Infinity`, `-Infinity`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: `-d.ddde<exp>`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    if (-4..16).contains(&exp) {
        if exp < 0 {
            let zeros = "0".repeat((-exp - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        } else if exp + 1 >= n {
            let zeros = "0".repeat((exp + 1 - n) as usize);
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        // Expected strings from Python 3: `repr(x)`.
        let cases = [
            (1.0, "1.0"),
            (4.15, "4.15"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789.0, "123456789.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (4.333333333333333, "4.333333333333333"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x:?}");
        }
    }

    #[test]
    fn dumps_matches_python_defaults() {
        let text = r#"{"b": [1, -2, 1.0, 4.15], "a": {"z": null, "y": true}, "s": "é\u2028\u007f😀\"\\\n"}"#;
        let v: PyValue = serde_json::from_str(text).unwrap();
        // json.dumps(json.loads(text)) in Python 3.
        let want = r#"{"b": [1, -2, 1.0, 4.15], "a": {"z": null, "y": true}, "s": "\u00e9\u2028\u007f\ud83d\ude00\"\\\n"}"#;
        assert_eq!(dumps(&v), want);
    }

    #[test]
    fn repeated_keys_keep_first_place_and_last_value() {
        let v: PyValue = serde_json::from_str(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(dumps(&v), r#"{"a": 3, "b": 2}"#);
        let mut v = v;
        assert!(v.set("c", PyValue::Int(4)));
        assert!(v.set("b", PyValue::Int(5)));
        assert_eq!(dumps(&v), r#"{"a": 3, "b": 5, "c": 4}"#);
    }
}
