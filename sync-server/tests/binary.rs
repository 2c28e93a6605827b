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

#[test]
fn a_config_file_sets_every_flag_below_the_environment_and_the_command_line() {
    let dir = temp_dir("config");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("relay.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata = {:?}\nmax_frame_bytes = 123456\nwebhook-allow = [\"a.internal\", \"b.internal\"]\nopen = true\n",
            dir.join("data")
        ),
    )
    .unwrap();
    let check = |env: &[(&str, &str)], file: &std::path::Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rapport-server"));
        command.args(["config", "check"]).arg(file);
        command
            .env_remove("RAPPORT_LISTEN")
            .env_remove("RAPPORT_DATA");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let checked = check(&[], &file);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for line in [
        "max-frame-bytes = \"123456\"    # file",
        "listen = \"127.0.0.1:0\"    # file",
        "webhook-allow = [\"a.internal\", \"b.internal\"]    # file",
        "open = \"true\"    # file",
        "idle-timeout-secs = ",
    ] {
        assert!(said.contains(line), "`{line}` missing from:\n{said}");
    }
    // The environment wins over the file.
    let checked = check(&[("RAPPORT_LISTEN", "127.0.0.1:4040")], &file);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        said.contains("listen = \"127.0.0.1:4040\"    # environment"),
        "{said}"
    );

    // What is wrong is named.
    for (text, expected) in [
        ("max-frame-byte = 1\n", "unknown key `max-frame-byte`"),
        ("max-frame-bytes = \"lots\"\n", "max-frame-bytes"),
        ("open = \"yes\"\n", "is true or false"),
        ("listen = [\"a\", \"b\"]\n", "takes one value"),
        ("listen = \n", "relay.toml"),
    ] {
        std::fs::write(&file, text).unwrap();
        let checked = check(&[], &file);
        let said = String::from_utf8_lossy(&checked.stderr);
        assert!(!checked.status.success(), "{text} passed");
        assert!(
            said.contains(expected),
            "`{expected}` missing for {text:?}: {said}"
        );
    }

    // A flag on the command line wins over the file when serving.
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:9\"\ndata = {:?}\nopen = true\n",
            dir.join("data")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .arg("--config")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let listening = lines
        .find(|l| l.contains("listening"))
        .expect("the relay starts from the file");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!listening.contains("127.0.0.1:9 "), "{listening}");
    assert!(
        listening.contains(&format!("{}", dir.join("data").display())),
        "{listening}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_logs_carry_the_request_id_each_http_call_answers_with() {
    use std::io::{Read as _, Write as _};
    let data = temp_dir("json-logs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--open",
            "--log-format",
            "json",
            "--data",
        ])
        .arg(&data)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("rapport-server starts");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a listening line");
        seen.push(line.clone());
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if let Some(addr) = event["fields"]["addr"].as_str() {
            break addr.to_owned();
        }
    };
    let get = |request_id: Option<&str>| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let header = request_id
            .map(|id| format!("X-Request-Id: {id}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /api/info HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: ").map(str::to_owned))
            .unwrap_or_else(|| panic!("no request id in: {answer}"))
    };
    assert_eq!(get(Some("proxy-42")), "proxy-42", "a proxy's id is kept");
    // An id a proxy should not have sent (spaces, say) is replaced.
    let made = get(Some("not ok"));
    assert_ne!(made, "not ok");
    // The access log line of each call carries its id.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut logged = Vec::new();
    while logged.len() < 2 {
        let line = lines_rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the access log");
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if event["fields"]["message"] == "answered" {
            logged.push(event["spans"][0]["request_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(logged, ["proxy-42".to_owned(), made]);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_relay_whose_log_pipe_closed_still_stops_on_sigterm() {
    let data = temp_dir("closed-log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-server"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("rapport-server starts");
    // Read the first line, then close the pipe: every later log line fails.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a first line").unwrap();
    assert!(first.contains("listening"), "{first}");
    drop(lines);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the relay did not stop after SIGTERM with its log pipe closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&data);
}
