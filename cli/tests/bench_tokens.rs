//! `rapport bench` against a relay with tokens, as operators run it: the
//! bench makes a workspace of its own, a key and a token per peer; a live
//! `rapport-client` replica that joins it sees every typed change, a
//! fresh peer syncs every record a loader put there, and idle connections
//! and the echo get in.

mod common;

use std::process::Command;

use common::Relay;

#[test]
fn the_bench_drives_a_relay_with_tokens() {
    let relay = Relay::start();
    let typing = bench(
        &relay,
        &[
            "live-replica",
            "--empty",
            "--editors",
            "2",
            "--seconds",
            "1",
            "--observers",
            "0",
        ],
    );
    let typed = row(&typing, "changes typed")["value"]["single"]
        .as_f64()
        .unwrap();
    assert!(typed > 0.0, "{typing}");
    let visible = &row(&typing, "visible in a live rapport-client replica")["value"]["samples"];
    assert_eq!(
        visible["count"].as_f64(),
        Some(typed),
        "every typed change reached the replica: {typing}"
    );
    assert!(typing.to_string().contains("with tokens"), "{typing}");
    // Cold sync and ingest run with tokens too.
    let cold = bench(&relay, &["cold-sync", "--records", "20", "--changes", "3"]);
    let synced = row(&cold, "time to fully synced");
    assert!(synced["value"]["single"].as_f64().is_some(), "{cold}");
    let ingest = bench(
        &relay,
        &[
            "ingest",
            "--peers",
            "2",
            "--seconds",
            "1",
            "--fsync-seconds",
            "0.2",
        ],
    );
    assert!(ingest.to_string().contains("with tokens"), "{ingest}");
    // Idle connections and the echo with tokens too (no baseline server
    // here: that is the bench's own echo server).
    let idle = bench(
        &relay,
        &[
            "idle",
            "--connections",
            "20",
            "--echoes",
            "20",
            "--no-baseline",
        ],
    );
    let echo = &row(&idle, "echo")["value"]["samples"];
    assert_eq!(echo["count"].as_f64(), Some(20.0), "{idle}");
}

/// Runs `rapport bench ARGS --relay URL --json`; its one JSON report.
fn bench(relay: &Relay, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .arg("bench")
        .args(args)
        .args(["--relay", &relay.url, "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rapport bench {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON value")
}

/// The row of `report` measuring `measure`.
fn row(report: &serde_json::Value, measure: &str) -> serde_json::Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["measure"] == measure))
        .cloned()
        .unwrap_or_else(|| panic!("no `{measure}` row in {report}"))
}
