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

#[test]
fn backup_while_serving_then_restore_into_a_stopped_relays_folder() {
    let data = temp_dir("backup-data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stderr(Stdio::piped())
        .spawn()
        .expect("rapport-server starts");
    // The control socket exists once the relay serves.
    let socket = data.join("control.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(std::time::Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let files = temp_dir("backup-files");
    std::fs::create_dir_all(&files).unwrap();
    let to = files.join("relay.backup");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_rapport-server"))
            .args(args)
            .output()
            .unwrap()
    };
    let backup = run(&[
        "backup".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--to".as_ref(),
        to.as_os_str(),
    ]);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(String::from_utf8_lossy(&backup.stdout).starts_with("wrote "));
    // Not under the running relay.
    let restore = |into: &std::path::Path, force: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "restore".as_ref(),
            "--from".as_ref(),
            to.as_os_str(),
            "--data".as_ref(),
            into.as_os_str(),
        ];
        if force {
            args.push("--force".as_ref());
        }
        run(&args)
    };
    let refused = restore(&data, true);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is running"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
    let elsewhere = temp_dir("backup-restored");
    let restored = restore(&elsewhere, false);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(elsewhere.join("relay.redb").exists());
    for dir in [data, files, elsewhere] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
