//! A restricted unpickler for the `data.pkl` of a state dict, and the pickler that writes one.
//! Follows Python's `pickle` opcodes (`Lib/pickletools.py`) and torch 2.11's `torch/serialization.py` and
//! `torch/_weights_only_unpickler.py` (the same idea: an allow-list, never a call).
//!
//! The reader is a stack machine over an arena of values: it knows the data opcodes of protocols 2 to 5 that
//! `torch.save` uses (and a few harmless ones), four kinds of global and one persistent-id form:
//!
//! * `collections.OrderedDict`, called with no arguments (the state dict itself and empty backward hooks);
//! * `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`;
//! * `torch._utils._rebuild_parameter(tensor, requires_grad, hooks)`;
//! * `torch.<X>Storage` classes, only inside a persistent id `('storage', class, key, location, numel)`.
//!
//! `REDUCE` with any of these builds a value; no callable is ever invoked, and any other global
//! (`os.system`, `builtins.eval`, ...) or opcode is refused with its name and byte offset. `BUILD` is accepted only
//! on a dict (torch sets the state dict's `_metadata` that way) with state that holds no tensor.

use crate::DType;

/// Where a tensor's bytes are: one record of the state dict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRecord {
    /// The storage's key: its bytes are the archive entry `data/<key>`.
    pub storage_key: String,
    /// The storage class name (`FloatStorage`, ...).
    pub storage_class: String,
    /// Its dtype, `None` for a storage class this crate does not read.
    pub dtype: Option<DType>,
    /// The device the storage was saved from (`cpu`, `cuda:0`, ...); the bytes do not depend on it.
    pub location: String,
    /// Elements of the storage.
    pub storage_numel: u64,
    /// The tensor's first element, in elements from the storage start.
    pub offset: u64,
    /// The tensor's shape.
    pub shape: Vec<u64>,
    /// The tensor's strides, in elements.
    pub stride: Vec<u64>,
}

/// The largest `data.pkl` read (a state dict's pickle holds names and small tuples only).
pub const MAX_PICKLE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(String),
}

#[derive(Debug, Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Str(String),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global(Global),
    Storage(Box<StorageRef>),
    Tensor(Box<TensorRecord>),
}

#[derive(Debug, Clone)]
struct StorageRef {
    class: String,
    key: String,
    location: String,
    numel: u64,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

/// The globals a state dict may name, or the refusal naming the one it may not.
fn resolve_global(module: &str, name: &str) -> Result<Global, String> {
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", n) if n.ends_with("Storage") && n.len() > "Storage".len() => {
            Ok(Global::Storage(n.to_string()))
        }
        _ => Err(format!(
            "global `{module}.{name}` is not allowed (a state dict needs only collections.OrderedDict, \
             torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.*Storage)"
        )),
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    arena: Vec<Value>,
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, usize>,
}

/// Reads a state dict's `data.pkl`: the keys in file order with where each tensor's bytes are. The error names
/// the refused opcode or global, or what is malformed, with its byte offset.
pub fn read_state_dict(data: &[u8]) -> Result<Vec<(String, TensorRecord)>, String> {
    if data.len() > MAX_PICKLE_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_PICKLE_BYTES} a state dict's pickle may have",
            data.len()
        ));
    }
    let mut m = Machine {
        data,
        pos: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: std::collections::HashMap::new(),
    };
    let top = m.run()?;
    m.state_dict(top)
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated at byte {} (needs {n} more bytes)", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("unterminated line at byte {}", self.pos))?;
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| format!("line at byte {} is not UTF-8", self.pos))?
            .to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<String, String> {
        let at = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| format!("string at byte {at} is not UTF-8"))
    }

    fn push(&mut self, v: Value) {
        self.arena.push(v);
        self.stack.push(self.arena.len() - 1);
    }

    fn pop(&mut self, at: usize) -> Result<usize, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("stack underflow at byte {at}"));
        }
        Ok(self.stack.pop().unwrap_or_default())
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<usize>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| format!("no MARK before byte {at}"))?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&self, at: usize) -> Result<usize, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("empty stack at byte {at}"));
        }
        Ok(self.stack[self.stack.len() - 1])
    }

    fn memo_put(&mut self, key: u32, at: usize) -> Result<(), String> {
        let top = self.top(at)?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u32, at: usize) -> Result<(), String> {
        let i = *self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo key {key} read before it was written (byte {at})"))?;
        self.stack.push(i);
        Ok(())
    }

    fn set_items(&mut self, dict: usize, items: &[usize], at: usize) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err(format!("odd number of items for SETITEMS at byte {at}"));
        }
        let pairs: Vec<(usize, usize)> = items.chunks(2).map(|p| (p[0], p[1])).collect();
        match &mut self.arena[dict] {
            Value::Dict(d) => {
                d.extend(pairs);
                Ok(())
            }
            other => Err(format!(
                "SETITEM on a {} at byte {at} (only dicts take items)",
                other.kind()
            )),
        }
    }

    /// Runs the opcodes to `STOP`; returns the arena index of the result.
    fn run(&mut self) -> Result<usize, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            if op == b'.' {
                return self.pop(at);
            }
            let handled = self.control(op, at)?
                || self.memo_op(op, at)?
                || self.container(op, at)?
                || self.object(op, at)?
                || self.literal(op, at)?;
            if !handled {
                return Err(format!(
                    "opcode {} at byte {at} is not allowed",
                    opcode_name(op)
                ));
            }
        }
    }

    /// The protocol, frame, mark and global opcodes; false for any other opcode.
    fn control(&mut self, op: u8, at: usize) -> Result<bool, String> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if !(2..=5).contains(&proto) {
                    return Err(format!(
                        "pickle protocol {proto} at byte {at} (2 to 5 are read)"
                    ));
                }
            }
            0x95 => {
                self.take(8)?;
            }
            b'(' => self.marks.push(self.stack.len()),
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let g = resolve_global(&module, &name).map_err(|e| format!("{e} (byte {at})"))?;
                self.push(Value::Global(g));
            }
            0x93 => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                let (Value::Str(module), Value::Str(name)) =
                    (&self.arena[module], &self.arena[name])
                else {
                    return Err(format!("STACK_GLOBAL without two strings at byte {at}"));
                };
                let g = resolve_global(module, name).map_err(|e| format!("{e} (byte {at})"))?;
                self.push(Value::Global(g));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The memo opcodes (PUT, GET and their binary forms, MEMOIZE); false for any other opcode.
    fn memo_op(&mut self, op: u8, at: usize) -> Result<bool, String> {
        match op {
            b'q' => {
                let k = self.u8()?;
                self.memo_put(u32::from(k), at)?;
            }
            b'r' => {
                let k = self.u32()?;
                self.memo_put(k, at)?;
            }
            0x94 => {
                let k = u32::try_from(self.memo.len()).map_err(|_| "memo too large".to_string())?;
                self.memo_put(k, at)?;
            }
            b'h' => {
                let k = self.u8()?;
                self.memo_get(u32::from(k), at)?;
            }
            b'j' => {
                let k = self.u32()?;
                self.memo_get(k, at)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The tuple and dict opcodes; false for any other opcode.
    fn container(&mut self, op: u8, at: usize) -> Result<bool, String> {
        match op {
            b')' => self.push(Value::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark(at)?;
                self.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop(at)?);
                }
                items.reverse();
                self.push(Value::Tuple(items));
            }
            b'}' => self.push(Value::Dict(Vec::new())),
            b's' => {
                let v = self.pop(at)?;
                let k = self.pop(at)?;
                let d = self.top(at)?;
                self.set_items(d, &[k, v], at)?;
            }
            b'u' => {
                let items = self.pop_mark(at)?;
                let d = self.top(at)?;
                self.set_items(d, &items, at)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The opcodes that make objects (BINPERSID, REDUCE, BUILD), each checked against the allowed globals; false
    /// for any other opcode.
    fn object(&mut self, op: u8, at: usize) -> Result<bool, String> {
        match op {
            b'Q' => {
                let pid = self.pop(at)?;
                let s = self
                    .persistent_id(pid)
                    .map_err(|e| format!("{e} (BINPERSID at byte {at})"))?;
                self.push(Value::Storage(Box::new(s)));
            }
            b'R' => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                let v = self
                    .reduce(callable, args)
                    .map_err(|e| format!("{e} (REDUCE at byte {at})"))?;
                self.push(v);
            }
            b'b' => {
                let state = self.pop(at)?;
                let obj = self.top(at)?;
                self.build(obj, state)
                    .map_err(|e| format!("{e} (BUILD at byte {at})"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Pushes the literal of a data opcode (strings, ints, bools, None); false for any other opcode.
    fn literal(&mut self, op: u8, at: usize) -> Result<bool, String> {
        match op {
            b'X' => {
                let n = self.u32()? as usize;
                let s = self.string(n)?;
                self.push(Value::Str(s));
            }
            0x8c => {
                let n = usize::from(self.u8()?);
                let s = self.string(n)?;
                self.push(Value::Str(s));
            }
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Value::Int(i64::from(v)));
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Value::Int(i64::from(v)));
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Value::Int(i64::from(v)));
            }
            0x8a => {
                let n = usize::from(self.u8()?);
                if n > 8 {
                    return Err(format!(
                        "LONG1 of {n} bytes at byte {at} (at most 8 are read)"
                    ));
                }
                let b = self.take(n)?;
                let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                buf[..n].copy_from_slice(b);
                self.push(Value::Int(i64::from_le_bytes(buf)));
            }
            0x88 | 0x89 => self.push(Value::Bool),
            b'N' => self.push(Value::None),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn ints(&self, tuple: usize, what: &str) -> Result<Vec<u64>, String> {
        let Value::Tuple(items) = &self.arena[tuple] else {
            return Err(format!(
                "{what} is a {}, not a tuple",
                self.arena[tuple].kind()
            ));
        };
        items
            .iter()
            .map(|&i| match self.arena[i] {
                Value::Int(v) if v >= 0 => Ok(v as u64),
                Value::Int(v) => Err(format!("{what} holds the negative value {v}")),
                ref other => Err(format!("{what} holds a {}", other.kind())),
            })
            .collect()
    }

    fn int(&self, i: usize, what: &str) -> Result<u64, String> {
        match self.arena[i] {
            Value::Int(v) if v >= 0 => Ok(v as u64),
            ref other => Err(format!(
                "{what} is not a non-negative int ({})",
                other.kind()
            )),
        }
    }

    fn persistent_id(&self, pid: usize) -> Result<StorageRef, String> {
        let Value::Tuple(items) = &self.arena[pid] else {
            return Err(format!(
                "persistent id is a {}, not a tuple",
                self.arena[pid].kind()
            ));
        };
        let [tag, class, key, location, numel] = items.as_slice() else {
            return Err(format!("persistent id has {} fields, not 5", items.len()));
        };
        let str_of = |i: usize, what: &str| match &self.arena[i] {
            Value::Str(s) => Ok(s.clone()),
            other => Err(format!("persistent id {what} is a {}", other.kind())),
        };
        if str_of(*tag, "tag")? != "storage" {
            return Err("persistent id is not a ('storage', ...) record".into());
        }
        let Value::Global(Global::Storage(class)) = &self.arena[*class] else {
            return Err("persistent id does not name a torch.*Storage class".into());
        };
        Ok(StorageRef {
            class: class.clone(),
            key: str_of(*key, "key")?,
            location: str_of(*location, "location")?,
            numel: self.int(*numel, "storage size")?,
        })
    }

    fn reduce(&self, callable: usize, args: usize) -> Result<Value, String> {
        let Value::Global(g) = &self.arena[callable] else {
            return Err(format!(
                "calling a {} is not allowed",
                self.arena[callable].kind()
            ));
        };
        let Value::Tuple(a) = self.arena[args].clone() else {
            return Err("arguments are not a tuple".into());
        };
        match g.clone() {
            Global::OrderedDict if a.is_empty() => Ok(Value::Dict(Vec::new())),
            Global::OrderedDict => Err("collections.OrderedDict called with arguments".into()),
            Global::RebuildParameter => match a.as_slice() {
                [t, _, _] if matches!(self.arena[*t], Value::Tensor(_)) => {
                    Ok(self.arena[*t].clone())
                }
                _ => Err(
                    "torch._utils._rebuild_parameter needs (tensor, requires_grad, hooks)".into(),
                ),
            },
            Global::RebuildTensorV2 => self.rebuild_tensor(&a),
            Global::Storage(c) => Err(format!("calling torch.{c} is not allowed")),
        }
    }

    fn rebuild_tensor(&self, a: &[usize]) -> Result<Value, String> {
        if !(6..=7).contains(&a.len()) {
            return Err(format!(
                "_rebuild_tensor_v2 with {} arguments (6 or 7 expected)",
                a.len()
            ));
        }
        let Value::Storage(s) = &self.arena[a[0]] else {
            return Err(format!(
                "_rebuild_tensor_v2 storage is a {}",
                self.arena[a[0]].kind()
            ));
        };
        let shape = self.ints(a[2], "size")?;
        let stride = self.ints(a[3], "stride")?;
        if shape.len() != stride.len() {
            return Err(format!(
                "size has {} dims, stride {}",
                shape.len(),
                stride.len()
            ));
        }
        if !matches!(self.arena[a[4]], Value::Bool) {
            return Err("requires_grad is not a bool".into());
        }
        if !matches!(&self.arena[a[5]], Value::Dict(d) if d.is_empty()) {
            return Err("backward hooks are not an empty OrderedDict".into());
        }
        Ok(Value::Tensor(Box::new(TensorRecord {
            storage_key: s.key.clone(),
            storage_class: s.class.clone(),
            dtype: DType::from_storage_class(&s.class),
            location: s.location.clone(),
            storage_numel: s.numel,
            offset: self.int(a[1], "storage offset")?,
            shape,
            stride,
        })))
    }

    /// `BUILD` on a dict with metadata as state; a tensor anywhere in the state would be lost, so it is refused.
    fn build(&self, obj: usize, state: usize) -> Result<(), String> {
        if !matches!(self.arena[obj], Value::Dict(_)) {
            return Err(format!(
                "BUILD of a {} is not allowed",
                self.arena[obj].kind()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![state];
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            match &self.arena[i] {
                Value::Tensor(_) | Value::Storage(_) => {
                    return Err("object state holding a tensor is not allowed".into())
                }
                Value::Tuple(t) => todo.extend(t),
                Value::Dict(d) => todo.extend(d.iter().flat_map(|&(k, v)| [k, v])),
                _ => {}
            }
        }
        Ok(())
    }

    fn state_dict(&self, top: usize) -> Result<Vec<(String, TensorRecord)>, String> {
        let Value::Dict(items) = &self.arena[top] else {
            return Err(format!(
                "the pickle holds a {}, not a state dict",
                self.arena[top].kind()
            ));
        };
        let mut out: Vec<(String, TensorRecord)> = Vec::with_capacity(items.len());
        let mut keys = std::collections::HashSet::new();
        for &(k, v) in items {
            let Value::Str(key) = &self.arena[k] else {
                return Err(format!(
                    "a state-dict key is a {}, not a str",
                    self.arena[k].kind()
                ));
            };
            let Value::Tensor(t) = &self.arena[v] else {
                return Err(format!(
                    "state-dict entry `{key}` is a {}, not a tensor",
                    self.arena[v].kind()
                ));
            };
            if !keys.insert(key.clone()) {
                return Err(format!("state-dict key `{key}` appears twice"));
            }
            out.push((key.clone(), (**t).clone()));
        }
        Ok(out)
    }
}

/// The pickletools name of an opcode byte (for refusals).
fn opcode_name(op: u8) -> String {
    let name = match op {
        b'R' => "REDUCE",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'G' => "BINFLOAT",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8e => "BINBYTES8",
        0x8d => "BINUNICODE8",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        b']' => "EMPTY_LIST",
        b'l' => "LIST",
        b'a' => "APPEND",
        b'e' => "APPENDS",
        b'd' => "DICT",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x82..=0x84 => "EXT",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'g' => "GET",
        b'p' => "PUT",
        0x8b => "LONG4",
        _ => "",
    };
    if name.is_empty() {
        format!("0x{op:02x}")
    } else {
        format!("{name} (0x{op:02x})")
    }
}

/// One tensor of a state dict to pickle: its key, storage class, storage key and shape (contiguous, offset 0).
#[derive(Debug, Clone)]
pub struct RecordOut<'a> {
    /// The state-dict key.
    pub key: &'a str,
    /// The element type.
    pub dtype: DType,
    /// The storage key (`data/<key>` in the archive).
    pub storage_key: String,
    /// The shape.
    pub shape: &'a [u64],
}

fn put_int(out: &mut Vec<u8>, v: u64) {
    if v < 256 {
        out.extend([b'K', v as u8]);
    } else if v < 65536 {
        out.push(b'M');
        out.extend((v as u16).to_le_bytes());
    } else if v < (1 << 31) {
        out.push(b'J');
        out.extend((v as u32).to_le_bytes());
    } else {
        // LONG1: the minimal two's-complement bytes (a positive value needs a clear top bit).
        let bytes = v.to_le_bytes();
        let mut n = 8 - (v.leading_zeros() as usize / 8);
        if bytes[n - 1] & 0x80 != 0 {
            n += 1;
        }
        out.extend([0x8a, n as u8]);
        let mut b = bytes.to_vec();
        b.push(0);
        out.extend(&b[..n]);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_int_tuple(out: &mut Vec<u8>, v: &[u64]) {
    match v.len() {
        0 => out.push(b')'),
        1..=3 => {
            for &x in v {
                put_int(out, x);
            }
            out.push(0x84 + v.len() as u8);
        }
        _ => {
            out.push(b'(');
            for &x in v {
                put_int(out, x);
            }
            out.push(b't');
        }
    }
}

/// The `data.pkl` of a state dict, as `torch.save` (protocol 2) writes it: an `OrderedDict` of
/// `_rebuild_tensor_v2` calls on persistent-id storages, contiguous tensors at offset 0. Globals are written
/// once and memoised.
pub fn write_state_dict(records: &[RecordOut<'_>]) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    out.extend(b"ccollections\nOrderedDict\nq\x00)R");
    out.push(b'(');
    let mut memo: Vec<String> = vec!["collections.OrderedDict".into()];
    let mut global = |out: &mut Vec<u8>, module: &str, name: &str| {
        let full = format!("{module}.{name}");
        if let Some(i) = memo.iter().position(|m| *m == full) {
            out.extend([b'h', i as u8]);
        } else {
            out.extend(format!("c{module}\n{name}\n").as_bytes());
            out.extend([b'q', memo.len() as u8]);
            memo.push(full);
        }
    };
    for r in records {
        put_str(&mut out, r.key);
        global(&mut out, "torch._utils", "_rebuild_tensor_v2");
        out.push(b'(');
        out.push(b'(');
        put_str(&mut out, "storage");
        global(&mut out, "torch", r.dtype.storage_class());
        put_str(&mut out, &r.storage_key);
        put_str(&mut out, "cpu");
        put_int(&mut out, r.shape.iter().product());
        out.extend([b't', b'Q']);
        put_int(&mut out, 0);
        put_int_tuple(&mut out, r.shape);
        let mut stride = vec![1u64; r.shape.len()];
        for d in (0..r.shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * r.shape[d + 1].max(1);
        }
        put_int_tuple(&mut out, &stride);
        out.push(0x89);
        out.extend([b'h', 0, b')', b'R']);
        out.extend([b't', b'R']);
    }
    out.extend([b'u', b'.']);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_pickles_read_back() {
        let shapes: [&[u64]; 4] = [&[], &[3], &[70000, 2], &[1, 2, 3, 4]];
        let records: Vec<RecordOut> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| RecordOut {
                key: ["a", "b.c", "d", "e"][i],
                dtype: DType::ALL[i],
                storage_key: i.to_string(),
                shape: s,
            })
            .collect();
        let back = read_state_dict(&write_state_dict(&records)).unwrap();
        assert_eq!(back.len(), 4);
        for (r, (k, t)) in records.iter().zip(&back) {
            assert_eq!(
                (r.key, r.dtype, r.shape),
                (k.as_str(), t.dtype.unwrap(), t.shape.as_slice())
            );
            assert_eq!(t.storage_numel, r.shape.iter().product::<u64>());
        }
        assert_eq!(back[2].1.stride, vec![2, 1]);
        assert_eq!(back[3].1.stride, vec![24, 12, 4, 1]);
    }

    #[test]
    fn large_ints_round_trip() {
        for v in [
            0u64,
            255,
            256,
            65535,
            65536,
            (1 << 31) - 1,
            1 << 31,
            0xff_ffff_ffff,
            u64::MAX >> 1,
        ] {
            let mut p = vec![0x80, 2];
            put_int(&mut p, v);
            p.push(b'.');
            let mut m = Machine {
                data: &p,
                pos: 0,
                arena: Vec::new(),
                stack: Vec::new(),
                marks: Vec::new(),
                memo: Default::default(),
            };
            let i = m.run().unwrap();
            assert!(matches!(m.arena[i], Value::Int(x) if x as u64 == v), "{v}");
        }
    }

    #[test]
    fn foreign_globals_are_refused_by_name() {
        for (m, n) in [
            ("os", "system"),
            ("builtins", "eval"),
            ("torch", "load"),
            ("posix", "system"),
        ] {
            let mut p = vec![0x80u8, 2];
            p.extend(format!("c{m}\n{n}\nq\x00.").as_bytes());
            let e = read_state_dict(&p).unwrap_err();
            assert!(e.contains(&format!("`{m}.{n}`")), "{e}");
        }
    }
}
