//! `rapport bench live-replica` against a relay with tokens, as operators
//! run it: the bench makes a workspace of its own, a key and a token per
//! peer, and a live `rapport-client` replica that joins it sees every
//! typed change.

mod common;

use std::process::Command;

use common::Relay;

#[test]
fn live_replica_runs_against_a_relay_with_tokens() {
    let relay = Relay::start();
    let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args([
            "bench",
            "live-replica",
            "--relay",
            &relay.url,
            "--empty",
            "--editors",
            "2",
            "--seconds",
            "1",
            "--observers",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON value");
    let rows = report["rows"].as_array().expect("rows");
    let row = |measure: &str| {
        rows.iter()
            .find(|r| r["measure"] == measure)
            .cloned()
            .unwrap_or_else(|| panic!("no `{measure}` row in {report}"))
    };
    let typed = row("changes typed")["value"]["single"].as_f64().unwrap();
    assert!(typed > 0.0, "{report}");
    let visible = &row("visible in a live rapport-client replica")["value"]["samples"];
    assert_eq!(
        visible["count"].as_f64(),
        Some(typed),
        "every typed change reached the replica: {report}"
    );
    assert!(report.to_string().contains("with tokens"), "{report}");
    // The same without a token-free server is refused up front for a
    // scenario that cannot drive tokens yet.
    let refused = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["bench", "ingest", "--relay", &relay.url])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--open"));
}
