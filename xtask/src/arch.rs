//! The architecture rules among the workspace crates, checked on the dependency graph of `cargo metadata`.
//!
//! The rules are the table [`RULES`]: a crate may depend (normally or at build time) only on workspace crates of
//! a lower layer (grid <- augment <- data <- eval <- train <- cli, with the tensor-free config crates `hrm-arch`
//! and `hrm-recipe` just above grid and `hrm-model` below train); `hrm-testkit` is a dev-dependency only; a
//! tensor-free crate reaches neither `tch` nor `torch-sys`, through normal and build dependencies or its own
//! dev-dependencies. ARCHITECTURE.md explains the table.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// One row of the architecture table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The package name.
    pub krate: &'static str,
    /// Its layer: it may depend only on workspace crates of a strictly lower layer.
    pub layer: u8,
    /// Whether it must build and test without libtorch.
    pub tensor_free: bool,
}

const fn rule(krate: &'static str, layer: u8, tensor_free: bool) -> Rule {
    Rule {
        krate,
        layer,
        tensor_free,
    }
}

/// The crates that only tch crates may reach.
const LIBTORCH: &[&str] = &["tch", "torch-sys"];
/// The crate that may only be a dev-dependency.
const DEV_ONLY: &str = "hrm-testkit";

/// The architecture table: every workspace crate, its layer and whether it is tensor-free.
pub const RULES: &[Rule] = &[
    rule("hrm-testkit", 0, true),
    rule("hrm-tch-link", 0, true),
    rule("hrm-grid", 0, true),
    rule("hrm-arch", 1, true),
    rule("hrm-recipe", 2, true),
    rule("hrm-augment", 3, true),
    rule("hrm-model", 3, false),
    rule("hrm-data", 4, true),
    rule("hrm-eval", 5, true),
    rule("hrm-train", 6, false),
    rule("hrm-cli", 7, false),
    rule("xtask", 8, true),
];

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

/// Every broken rule of `graph` under the table `rules`.
pub fn violations(graph: &Graph, rules: &[Rule]) -> Vec<Violation> {
    let find = |name: &str| rules.iter().find(|r| r.krate == name);
    let members: BTreeSet<&str> = graph.members.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    let mut say = |tensor_free_rule, text: String| {
        out.push(Violation {
            tensor_free_rule,
            text,
        })
    };
    for m in &members {
        match find(m) {
            None => say(
                false,
                format!("`{m}` is not in the architecture table (xtask/src/arch.rs RULES)"),
            ),
            Some(r) if r.tensor_free => {
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
            Some(_) => {}
        }
    }
    for e in graph
        .edges
        .iter()
        .filter(|e| e.kind != Kind::Dev && members.contains(e.to.as_str()))
    {
        let (Some(from), Some(to)) = (find(&e.from), find(&e.to)) else {
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
        } else if to.layer >= from.layer {
            say(
                false,
                format!(
                    "{} -> {} ({:?}) goes against the layers: {} is layer {}, {} layer {}",
                    e.from, e.to, e.kind, e.to, to.layer, e.from, from.layer
                ),
            );
        }
    }
    out
}

/// Reads the workspace graph and fails listing every broken rule in `scope`.
pub fn check(scope: Scope) -> Result<()> {
    let out = crate::cargo()
        .args(["metadata", "--format-version", "1"])
        .output()
        .context("could not start cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let graph = Graph::from_metadata(&meta)?;
    let broken: Vec<String> = violations(&graph, RULES)
        .into_iter()
        .filter(|v| scope == Scope::All || v.tensor_free_rule)
        .map(|v| v.text)
        .collect();
    if !broken.is_empty() {
        bail!(
            "{} architecture rule(s) broken:\n  {}",
            broken.len(),
            broken.join("\n  ")
        );
    }
    let free: Vec<&str> = RULES
        .iter()
        .filter(|r| r.tensor_free)
        .map(|r| r.krate)
        .collect();
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
        let members = RULES.iter().map(|r| r.krate.to_string()).collect();
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
            ("hrm-cli", "hrm-train", Normal),
            ("hrm-grid", "hrm-eval", Dev),
        ]);
        assert_eq!(violations(&clean, RULES), vec![]);

        let bad = graph(&[
            ("hrm-grid", "hrm-data", Normal),
            ("hrm-eval", "hrm-testkit", Normal),
            ("hrm-eval", "half", Normal),
            ("half", "torch-sys", Build),
            ("hrm-data", "hrm-model", Dev),
            ("hrm-model", "tch", Normal),
        ]);
        let found = violations(&bad, RULES);
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
        assert!(violations(&unlisted, RULES)[0]
            .text
            .contains("`hrm-new` is not in the architecture table"));
    }
}
