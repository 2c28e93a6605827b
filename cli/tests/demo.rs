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
