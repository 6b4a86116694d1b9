//! The architecture rules among the workspace crates, checked on the dependency graph of `cargo metadata`.
//!
//! The rules are the table [`LAYERS`]: a crate may depend (normally or at build time) only on workspace crates of
//! a lower layer (grid <- augment <- data <- eval <- train <- cli, with the tensor-free config crates `hrm-arch`
//! and `hrm-recipe` just above grid, `hrm-model` below train and `hrm-dist` between them); `hrm-testkit` is a dev-dependency only; a
//! tensor-free crate reaches neither `tch` nor `torch-sys`, through normal and build dependencies or its own
//! dev-dependencies. ARCHITECTURE.md explains the table.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// The architecture table, lowest layer first: a crate may depend (normally or at build time) only on workspace
/// crates of a lower layer. Every workspace crate is listed; a new one fails the check until it is placed here.
pub const LAYERS: &[&[&str]] = &[
    // Leaves: the grid types, test support (a dev-dependency only), the build-script helper of the tch crates and the
    // torch.save file format (tensor-free).
    &["hrm-grid", "hrm-testkit", "hrm-tch-link", "hrm-torchfile"],
    // The tensor-free config crates, usable by anyone above grid.
    &["hrm-arch"],
    &["hrm-recipe"],
    // The model sits below the training loop and beside augment; it must not know datasets or evaluation.
    &["hrm-augment", "hrm-model"],
    // The collectives of data-parallel training (tch, no model): the trainer asks them for a world.
    &["hrm-dist"],
    &["hrm-data"],
    &["hrm-eval"],
    &["hrm-train"],
    &["hrm-cli"],
    // Orchestration: runs `hrm` as a child process and never links libtorch.
    &["xtask"],
];

/// The crates allowed to reach libtorch; every other crate of [`LAYERS`] is tensor-free.
pub const USES_LIBTORCH: &[&str] = &["hrm-model", "hrm-dist", "hrm-train", "hrm-cli"];

/// The crates that only the [`USES_LIBTORCH`] crates may reach.
const LIBTORCH: &[&str] = &["tch", "torch-sys"];
/// The crate that may only be a dev-dependency.
const DEV_ONLY: &str = "hrm-testkit";

/// The layer of a workspace crate, `None` when the table does not list it.
fn layer(krate: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&krate))
}

fn tensor_free() -> impl Iterator<Item = &'static str> {
    LAYERS
        .iter()
        .flat_map(|l| l.iter().copied())
        .filter(|k| !USES_LIBTORCH.contains(k))
}

/// How a dependency is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Build,
    Dev,
}

/// A resolved dependency edge between two packages (by name).
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: Kind,
}

/// The resolved dependency graph: the workspace members and every edge.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub members: Vec<String>,
    pub edges: Vec<Edge>,
}

/// Which rules a check reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the tensor-free rule (`cargo xtask check-tensor-free`).
    TensorFree,
    /// Every rule.
    All,
}

/// A broken rule: whether it is the tensor-free rule, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub tensor_free_rule: bool,
    pub text: String,
}

impl Graph {
    /// The graph of `cargo metadata` (the workspace's resolved dependencies).
    pub fn from_metadata(meta: &serde_json::Value) -> Result<Graph> {
        let mut names = HashMap::new();
        for p in meta["packages"]
            .as_array()
            .context("metadata without packages")?
        {
            names.insert(
                p["id"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default(),
            );
        }
        let name = |id: &serde_json::Value| {
            names
                .get(id.as_str().unwrap_or_default())
                .map(|n| n.to_string())
        };
        let members = meta["workspace_members"]
            .as_array()
            .context("metadata without members")?;
        let mut graph = Graph {
            members: members.iter().filter_map(name).collect(),
            edges: Vec::new(),
        };
        for node in meta["resolve"]["nodes"]
            .as_array()
            .context("metadata without a resolve graph")?
        {
            let from = name(&node["id"]).context("resolve node without a package")?;
            for dep in node["deps"].as_array().into_iter().flatten() {
                let to = name(&dep["pkg"]).context("resolve edge without a package")?;
                for k in dep["dep_kinds"].as_array().into_iter().flatten() {
                    let kind = match k["kind"].as_str() {
                        Some("dev") => Kind::Dev,
                        Some("build") => Kind::Build,
                        _ => Kind::Normal,
                    };
                    graph.edges.push(Edge {
                        from: from.clone(),
                        to: to.clone(),
                        kind,
                    });
                }
            }
        }
        Ok(graph)
    }

    /// The shortest chain of normal/build edges from `start` (whose own dev edges count too) to a libtorch crate.
    fn path_to_libtorch(&self, start: &str) -> Option<Vec<String>> {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            if LIBTORCH.contains(&at) {
                let mut path = vec![at.to_string()];
                let mut cur = at;
                while let Some(p) = parent.get(cur) {
                    path.push(p.to_string());
                    cur = p;
                }
                path.reverse();
                return Some(path);
            }
            for e in self.edges.iter().filter(|e| e.from == at) {
                let counts = e.kind != Kind::Dev || at == start;
                if counts && e.to != start && !parent.contains_key(e.to.as_str()) {
                    parent.insert(&e.to, at);
                    queue.push_back(&e.to);
                }
            }
        }
        None
    }
}

/// Every broken rule of `graph` under the table [`LAYERS`].
pub fn violations(graph: &Graph) -> Vec<Violation> {
    let members: BTreeSet<&str> = graph.members.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut say = |tensor_free_rule, text: String| {
        out.push(Violation {
            tensor_free_rule,
            text,
        })
    };
    for &m in &members {
        if layer(m).is_none() {
            say(
                false,
                format!("`{m}` is not in the architecture table (LAYERS in xtask/src/arch.rs)"),
            );
        } else if !USES_LIBTORCH.contains(&m) {
            if let Some(path) = graph.path_to_libtorch(m) {
                say(
                    true,
                    format!(
                        "`{m}` must stay tensor-free but reaches libtorch: {}",
                        path.join(" -> ")
                    ),
                );
            }
        }
    }
    for e in graph.edges.iter().filter(|e| e.kind != Kind::Dev) {
        let (Some(from), Some(to)) = (layer(&e.from), layer(&e.to)) else {
            continue;
        };
        if e.to == DEV_ONLY {
            say(
                false,
                format!(
                    "{} -> {}: `{DEV_ONLY}` may only be a dev-dependency",
                    e.from, e.to
                ),
            );
        } else if to >= from {
            say(
                false,
                format!(
                    "{} -> {} ({:?}) goes against the layers: {} is layer {to}, {} layer {from}",
                    e.from, e.to, e.kind, e.to, e.from
                ),
            );
        }
    }
    out
}

/// Reads the workspace graph and fails listing every broken rule in `scope`.
pub fn check(scope: Scope) -> Result<()> {
    let mut metadata = crate::cargo();
    metadata.args(["metadata", "--format-version", "1"]);
    let meta = crate::json_output(&mut metadata, "cargo metadata")?;
    let graph = Graph::from_metadata(&meta)?;
    let mut broken: Vec<String> = violations(&graph)
        .into_iter()
        .filter(|v| scope == Scope::All || v.tensor_free_rule)
        .map(|v| v.text)
        .collect();
    if scope == Scope::All {
        broken.extend(crate::modules::workspace_circles(&crate::repo_root()));
    }
    if !broken.is_empty() {
        bail!(
            "{} architecture rule(s) broken:\n  {}",
            broken.len(),
            broken.join("\n  ")
        );
    }
    let free: Vec<&str> = tensor_free().collect();
    eprintln!("tensor-free crates ok: {}", free.join(", "));
    if scope == Scope::All {
        eprintln!(
            "architecture rules ok: {} crates, {} edges",
            graph.members.len(),
            graph.edges.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str, Kind)]) -> Graph {
        let members = LAYERS
            .iter()
            .flat_map(|l| l.iter().map(|k| k.to_string()))
            .collect();
        let edges = edges
            .iter()
            .map(|&(from, to, kind)| Edge {
                from: from.into(),
                to: to.into(),
                kind,
            })
            .collect();
        Graph { members, edges }
    }

    #[test]
    fn the_checker_flags_each_broken_rule() {
        use Kind::*;
        let clean = graph(&[
            ("hrm-augment", "hrm-grid", Normal),
            ("hrm-data", "hrm-testkit", Dev),
            ("hrm-model", "tch", Normal),
            ("hrm-model", "hrm-tch-link", Build),
        ]);
        assert_eq!(violations(&clean), vec![]);

        let bad = graph(&[
            ("hrm-grid", "hrm-data", Normal),
            ("hrm-eval", "hrm-testkit", Normal),
            ("hrm-eval", "half", Normal),
            ("half", "torch-sys", Build),
            ("hrm-data", "hrm-model", Dev),
            ("hrm-model", "tch", Normal),
        ]);
        let found = violations(&bad);
        let texts: Vec<&str> = found.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(found.len(), 4, "{texts:#?}");
        assert!(
            texts[0].contains("hrm-data -> hrm-model -> tch"),
            "{texts:#?}"
        );
        assert!(
            texts[1].contains("hrm-eval -> half -> torch-sys"),
            "{texts:#?}"
        );
        assert!(texts[2].starts_with("hrm-grid -> hrm-data (Normal) goes against the layers"));
        assert!(texts[3].contains("`hrm-testkit` may only be a dev-dependency"));
        assert_eq!(found.iter().filter(|v| v.tensor_free_rule).count(), 2);

        let mut unlisted = graph(&[]);
        unlisted.members.push("hrm-new".into());
        assert!(violations(&unlisted)[0]
            .text
            .contains("`hrm-new` is not in the architecture table"));
    }
}
