//! The house rules of the workspace's layout (ARCHITECTURE.md), checked:
//!
//! - `rapport-protocol` and `rapport-model` stay sans-IO: no async runtime,
//!   database, HTTP server or WebSocket library in their normal
//!   dependency trees;
//! - the arrows between crates point where ARCHITECTURE.md says;
//! - inside each crate, no two files import each other, directly or
//!   through others (`crate::…` and `super::…` paths, outside tests). A
//!   module and its own submodules may refer to each other: that is one
//!   room with its cupboards, not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const IO_CRATES: [&str; 8] = [
    "tokio",
    "redb",
    "axum",
    "hyper",
    "mio",
    "tungstenite",
    "tokio-tungstenite",
    "async-std",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned()
}

/// The packages in `package`'s normal dependency tree.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace())
        .args(["tree", "--locked", "--offline", "-p", package])
        .args(["--edges", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_io_crate_enters_the_sans_io_crates() {
    for (package, expected) in [
        (
            "rapport-protocol",
            ["automerge", "minicbor", "ed25519-dalek"],
        ),
        (
            "rapport-model",
            ["automerge", "autosurgeon", "rapport-protocol"],
        ),
    ] {
        let deps = normal_dependencies(package);
        // The listing is real: the crate's own dependencies are in it.
        for name in expected {
            assert!(
                deps.contains(name),
                "{name} missing from {package}: {deps:?}"
            );
        }
        let found: Vec<_> = IO_CRATES.iter().filter(|io| deps.contains(**io)).collect();
        assert!(found.is_empty(), "{package} depends on {found:?}");
    }
}

#[test]
fn crates_depend_down_the_table() {
    let arrows = [
        ("rapport", "rapport-bench", true),
        ("rapport", "rapport-server", true),
        ("rapport-server", "rapport-model", true),
        ("rapport-client", "rapport-model", true),
        ("rapport-bench", "rapport-client", true),
        ("rapport-model", "rapport-client", false),
        ("rapport-server", "rapport-client", false),
        ("rapport-client", "rapport-server", false),
        ("rapport-bench", "rapport-server", false),
        ("rapport-protocol", "rapport-model", false),
    ];
    for (from, to, expected) in arrows {
        let deps = normal_dependencies(from);
        assert_eq!(
            deps.contains(to),
            expected,
            "{from} {} depend on {to}",
            if expected { "must" } else { "must not" }
        );
    }
}

#[test]
fn no_file_of_a_crate_imports_its_importers() {
    let root = workspace();
    let mut circles = Vec::new();
    for krate in [
        "protocol",
        "model",
        "client-lib",
        "sync-server",
        "bench",
        "cli",
        "tests",
    ] {
        let modules = Modules::read(&root.join(krate).join("src"));
        assert!(modules.files.len() > 2, "{krate}: no sources found");
        for circle in modules.circles() {
            circles.push(format!("{krate}: {}", circle.join(" -> ")));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// A module path inside a crate: `["workspace", "api"]`.
type ModPath = Vec<String>;

/// A crate's files, by module path, and which file refers to which.
struct Modules {
    files: BTreeMap<ModPath, PathBuf>,
}

impl Modules {
    fn read(src: &Path) -> Self {
        let mut files = BTreeMap::new();
        let mut stack = vec![src.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("a source folder") {
                let path = entry.expect("a folder entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(src).expect("under src");
                    let mut module: ModPath = relative
                        .with_extension("")
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    if matches!(
                        module.last().map(String::as_str),
                        Some("mod" | "lib" | "main")
                    ) {
                        module.pop();
                    }
                    // `src/bin/*` are crates of their own.
                    if module.first().is_some_and(|m| m == "bin") {
                        continue;
                    }
                    files.insert(module, path);
                }
            }
        }
        Self { files }
    }

    /// The file holding the item at `path`: the longest prefix that is a
    /// module with a file.
    fn resolve(&self, path: &[String]) -> Option<&ModPath> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.files.get_key_value(&path[..n]).map(|(k, _)| k))
    }

    /// What `module` refers to, outside its tests and comments.
    fn references(&self, module: &ModPath) -> BTreeSet<ModPath> {
        let text = std::fs::read_to_string(&self.files[module]).expect("a source file");
        let code = match text.find("#[cfg(test)]\nmod tests") {
            Some(at) => &text[..at],
            None => &text,
        };
        let mut out = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            for path in paths_in(line) {
                let absolute = absolute(module, &path);
                if let Some(target) = self.resolve(&absolute)
                    && target != module
                {
                    out.insert(target.clone());
                }
            }
        }
        out
    }

    /// Every set of files that import one another in a circle, ignoring
    /// references between a module and its own submodules.
    fn circles(&self) -> Vec<Vec<String>> {
        let graph: BTreeMap<&ModPath, BTreeSet<ModPath>> = self
            .files
            .keys()
            .map(|m| {
                let refs = self
                    .references(m)
                    .into_iter()
                    .filter(|t| !t.starts_with(m) && !m.starts_with(t))
                    .collect();
                (m, refs)
            })
            .collect();
        strongly_connected(&graph)
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| {
                component
                    .iter()
                    .map(|m| {
                        if m.is_empty() {
                            "lib".into()
                        } else {
                            m.join("/")
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// `crate::a::b` and `super::c` paths in a line, with `{…}` groups
/// expanded one level: `use crate::x::{y, z::w}` gives `x::y`, `x::z::w`.
fn paths_in(line: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = ["crate::", "super::"]
        .iter()
        .filter_map(|head| line[at..].find(head).map(|i| at + i))
        .min()
    {
        let after_word = line[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let path: String = line[start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || "_:{}, ".contains(*c))
            .collect();
        if !after_word {
            out.extend(expand(path.trim_end()));
        }
        at = start + path.len().max(1);
    }
    out
}

fn expand(path: &str) -> Vec<Vec<String>> {
    let (prefix, group) = match path.split_once("::{") {
        Some((prefix, group)) => (prefix, Some(group.split('}').next().unwrap_or_default())),
        None => (path.split([' ', ',', '}']).next().unwrap_or_default(), None),
    };
    let base: Vec<String> = prefix
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    match group {
        None => vec![base],
        Some(group) => group
            .split(',')
            .map(|item| {
                let mut full = base.clone();
                full.extend(
                    item.trim()
                        .split("::")
                        .filter(|s| !s.is_empty() && *s != "self")
                        .map(str::to_owned),
                );
                full
            })
            .collect(),
    }
}

/// `path` (starting `crate` or `super`) as seen from `module`, from the
/// crate root.
fn absolute(module: &ModPath, path: &[String]) -> ModPath {
    let mut segments = path.iter();
    let mut out = match segments.next().map(String::as_str) {
        Some("crate") => Vec::new(),
        _ => module[..module.len().saturating_sub(1)].to_vec(),
    };
    for segment in segments {
        if segment == "super" {
            out.pop();
        } else {
            out.push(segment.clone());
        }
    }
    out
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &BTreeMap<&ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        graph: &'a BTreeMap<&'a ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<ModPath, usize>,
        low: BTreeMap<ModPath, usize>,
        stack: Vec<ModPath>,
        on_stack: BTreeSet<ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit(state: &mut State<'_>, v: &ModPath) {
        let n = state.index.len();
        state.index.insert(v.clone(), n);
        state.low.insert(v.clone(), n);
        state.stack.push(v.clone());
        state.on_stack.insert(v.clone());
        let targets: Vec<ModPath> = state.graph.get(v).into_iter().flatten().cloned().collect();
        for w in &targets {
            if !state.index.contains_key(w) {
                visit(state, w);
                let low = state.low[v].min(state.low[w]);
                state.low.insert(v.clone(), low);
            } else if state.on_stack.contains(w) {
                let low = state.low[v].min(state.index[w]);
                state.low.insert(v.clone(), low);
            }
        }
        if state.low[v] == state.index[v] {
            let mut component = Vec::new();
            while let Some(w) = state.stack.pop() {
                state.on_stack.remove(&w);
                let done = &w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            state.out.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(*v) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn the_checker_sees_a_circle() {
    let dir = std::env::temp_dir().join(format!("rapport-layering-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::{inner::Thing, Other};\n").unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod inner;\nuse super::a;\n").unwrap();
    std::fs::write(src.join("b/inner.rs"), "use super::super::a::X;\n").unwrap();
    std::fs::write(src.join("c.rs"), "use crate::a; // crate::b in a comment\n").unwrap();
    let circles = Modules::read(&src).circles();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(circles.len(), 1, "{circles:?}");
    let mut found = circles[0].clone();
    found.sort();
    assert_eq!(found, ["a", "b", "b/inner"]);
}
