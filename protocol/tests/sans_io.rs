//! `rapport-protocol` stays sans-IO: no async runtime, database, HTTP server
//! or WebSocket library may enter its normal dependency tree.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const FORBIDDEN: [&str; 8] = [
    "tokio",
    "redb",
    "axum",
    "hyper",
    "mio",
    "tungstenite",
    "tokio-tungstenite",
    "async-std",
];

fn normal_dependencies() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["tree", "--locked", "--offline", "-p", "rapport-protocol"])
        .args(["--edges", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_io_crate_enters_the_protocol_crate() {
    let deps = normal_dependencies();
    // The listing is real: the crate's own dependencies are in it.
    for expected in ["rapport-protocol", "automerge", "minicbor", "ed25519-dalek"] {
        assert!(deps.contains(expected), "{expected} missing from {deps:?}");
    }
    let found: Vec<_> = FORBIDDEN
        .iter()
        .filter(|name| deps.contains(**name))
        .collect();
    assert!(found.is_empty(), "rapport-protocol depends on {found:?}");
}
