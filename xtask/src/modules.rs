//! The module rule of `cargo xtask check-arch`: within one crate, no circle of imports between its top-level
//! modules (`crate::a` used in `b` and `crate::b` in `a`, or through others). References in comments and in
//! `#[cfg(test)]` code do not count; `lib.rs` and `main.rs` (the crate roots) are not modules of the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's module graph: for each top-level module, the modules it names with `crate::`.
pub type ModuleGraph = BTreeMap<String, BTreeSet<String>>;

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src` belongs to (`run.rs` and `run/x.rs` are `run`); `None` for the roots.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The identifiers after `crate::` in `code`, including each name of a `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let head: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(head);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

/// The code of a source file that counts: before its `#[cfg(test)]`, without comment lines.
fn counted_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module graph of the crate whose sources are in `src`.
pub fn module_graph(src: &Path) -> ModuleGraph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: ModuleGraph = files
        .iter()
        .filter_map(|f| module_of(src, f))
        .map(|m| (m, BTreeSet::new()))
        .collect();
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for f in &files {
        let (Some(from), Ok(text)) = (module_of(src, f), std::fs::read_to_string(f)) else {
            continue;
        };
        for to in crate_paths(&counted_code(&text)) {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// The circles of `graph`: each strongly connected set of two or more modules, sorted (Tarjan's algorithm).
pub fn circles(graph: &ModuleGraph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a ModuleGraph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut set = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                set.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                s.found.push(set);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// Every import circle between the modules of one workspace crate (`crates/*/src`, `xtask/src`), as
/// `crate: a -> b -> ... ` lines.
pub fn workspace_circles(root: &Path) -> Vec<String> {
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    srcs.push(root.join("xtask").join("src"));
    srcs.sort();
    let mut out = Vec::new();
    for src in srcs {
        let name = src
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for set in circles(&module_graph(&src)) {
            out.push(format!(
                "{name}: modules {} import each other in a circle",
                set.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circle_through_a_group_import_is_found_and_comments_and_tests_do_not_count() {
        let dir = std::env::temp_dir().join(format!("xtask-modules-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("c")).unwrap();
        std::fs::write(
            src.join("lib.rs"),
            "//! root\npub mod a; pub mod b; pub mod c; pub mod d;\n",
        )
        .unwrap();
        std::fs::write(src.join("a.rs"), "//! a\nuse crate::{b::X, d};\n").unwrap();
        std::fs::write(
            src.join("b.rs"),
            "//! b\npub struct X;\nfn f() { crate::c::g(); }\n",
        )
        .unwrap();
        std::fs::write(src.join("c.rs"), "//! c\npub mod inner;\n").unwrap();
        std::fs::write(src.join("c").join("inner.rs"), "//! c\nuse crate::a;\n").unwrap();
        std::fs::write(
            src.join("d.rs"),
            "//! see crate::a\n// crate::a\n#[cfg(test)]\nuse crate::a;\n",
        )
        .unwrap();
        let graph = module_graph(&src);
        let found = circles(&graph);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(found, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
        assert!(graph["d"].is_empty(), "{graph:?}");
    }

    #[test]
    fn the_workspace_has_no_module_circle() {
        let found = workspace_circles(&crate::repo_root());
        assert!(found.is_empty(), "{found:#?}");
    }
}
