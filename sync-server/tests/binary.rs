//! The `rapport-server` binary: starts, serves, and on SIGTERM closes its
//! sockets with a close frame and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rapport-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn sigterm_closes_sockets_and_exits_zero() {
    let data = temp_dir("sigterm");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .args(["--listen", "127.0.0.1:0", "--open", "--data"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("rapport-server starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let addr = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a listening line");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_owned();
        }
    };

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/sync"))
        .await
        .expect("the WebSocket opens in --open mode");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let close = loop {
        match tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
            Ok(Some(Ok(tungstenite::Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1001), "going away");
    let exit = child.wait().expect("the relay exits");
    assert!(exit.success(), "{exit:?}");
    let logs: Vec<String> = lines_rx.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn help_explains_the_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--data",
        "--open",
        "--max-frame-bytes",
        "RAPPORT_DATA",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}

#[test]
fn a_data_folder_that_cannot_be_created_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/proc/rapport-cannot-be-here",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot create the data folder /proc/rapport-cannot-be-here"),
        "{stderr}"
    );
}
