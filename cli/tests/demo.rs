//! `rapport demo`, run as a user runs it.

use std::process::Command;

#[test]
fn the_demo_runs_and_the_edit_and_the_comment_reach_both() {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("A self-service portal for Acme's buyers."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Does the portal need single sign-on?"),
        "{stdout}"
    );
    assert!(stdout.contains("not the customer"), "{stdout}");
}

#[test]
fn help_teaches_by_example() {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Examples:") && help.contains("--data"),
        "{help}"
    );
}

#[test]
fn bench_replica_measures_and_reports_one_json_value() {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args([
            "bench",
            "replica",
            "--records",
            "25",
            "--rounds",
            "2",
            "--trace-edits",
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
    assert_eq!(report["scenario"], "replica");
    assert_eq!(report["params"]["records"], 25);
    let row = |measure: &str| {
        report["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["measure"] == measure))
            .cloned()
            .unwrap_or_else(|| panic!("no `{measure}` row in {report}"))
    };
    // The bench fails unless the index lists every record it made.
    for measure in [
        "list from the index",
        "compute the dashboard (from the listed index)",
    ] {
        let samples = &row(measure)["value"]["samples"];
        assert_eq!(samples["count"], 2, "{measure}: one sample a round");
        assert!(
            samples["p50"].as_f64().is_some_and(|s| s > 0.0),
            "{measure}"
        );
    }
    assert!(
        row("create, each durable: per record")["value"]["single"]
            .as_f64()
            .is_some()
    );
}
