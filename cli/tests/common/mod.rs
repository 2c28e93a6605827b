//! The harness the CLI tests share: a temporary home folder that runs the
//! built binary, and a relay in its own process.
//!
//! Cargo compiles this module into each test binary, and each uses only
//! part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// A home folder under the system's temporary folder, removed at the end.
/// Its name is unique within the test binary, so tests that run at the
/// same time never share one.
pub(crate) struct Home(PathBuf);

impl Home {
    /// A fresh, empty home; nothing has run `init` in it.
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rapport-cli-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }

    /// A fresh home made by `rapport init --name "Ann Lee"`.
    pub(crate) fn init(name: &str) -> Self {
        let home = Self::new(name);
        home.ok(&["init", "--name", "Ann Lee"]);
        home
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// The binary with `--home` and `args`, ready to run.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rapport"));
        command
            .arg("--home")
            .arg(&self.0)
            .args(args)
            .env_remove("RAPPORT_HOME");
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("the rapport binary runs")
    }

    /// Runs a command that must succeed; its stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let (stdout, stderr) = texts(&output);
        assert!(
            output.status.success(),
            "rapport {args:?} failed:\n{stdout}\n{stderr}"
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Runs a command with `--json`; the one JSON value it printed.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(&[&["--json"], args].concat());
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("rapport {args:?}: not one JSON value ({e}):\n{stdout}"))
    }

    /// Adds a record; its full id, from `--json` output `{"id": …}`.
    pub(crate) fn add(&self, args: &[&str]) -> String {
        let added = self.json(args);
        added["id"]
            .as_str()
            .unwrap_or_else(|| panic!("rapport {args:?}: no id in {added}"))
            .to_owned()
    }

    /// Runs a command that must fail with one line on stderr; that line.
    pub(crate) fn error(&self, args: &[&str]) -> String {
        let output = self.run(args);
        one_line_failure(args, &output).1
    }

    /// Runs a command that must fail with one line on stderr containing
    /// `expected`, and nothing on stdout.
    pub(crate) fn fails(&self, args: &[&str], expected: &str) {
        let output = self.run(args);
        let (stdout, stderr) = one_line_failure(args, &output);
        assert!(
            stdout.is_empty(),
            "rapport {args:?} printed on stdout:\n{stdout}"
        );
        assert!(
            stderr.contains(expected),
            "rapport {args:?}: expected `{expected}` in:\n{stderr}"
        );
    }
}

/// The stdout and stderr of `output`, having checked that the command
/// failed with one line on stderr.
fn one_line_failure(args: &[&str], output: &Output) -> (String, String) {
    let (stdout, stderr) = texts(output);
    assert!(
        !output.status.success(),
        "rapport {args:?} succeeded:\n{stdout}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "rapport {args:?}: not one line:\n{stderr}"
    );
    (stdout, stderr)
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The stdout and stderr of `output`, as text.
pub(crate) fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A relay in its own process on a free port of 127.0.0.1, with its own
/// data folder; killed at the end.
pub(crate) struct Relay {
    child: Child,
    /// The `ws://…/sync` URL clients connect to.
    pub(crate) url: String,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    _data: Home,
}

impl Relay {
    pub(crate) fn start() -> Self {
        Self::start_with(&["--listen", "127.0.0.1:0"])
    }

    /// A relay started with `args` after `serve --data DIR` (which must
    /// say where it listens).
    pub(crate) fn start_with(args: &[&str]) -> Self {
        Self::start_on(Home::new("relay"), args)
    }

    /// Stops the relay and starts it again on the same data folder and
    /// address, as an operator's restart does.
    pub(crate) fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = std::mem::replace(&mut self._data, Home::new("relay-moved"));
        let addr = self.addr.clone();
        drop(self);
        Self::start_on(data, &["--listen", &addr])
    }

    fn start_on(data: Home, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["serve", "--data"])
            .arg(data.path())
            .args(args)
            // The tests' webhook receivers listen on loopback.
            .args(["--webhook-allow", "127.0.0.1"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the relay starts");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines.next().expect("a listening line").expect("utf-8");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
            }
        };
        // Keep reading so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("ws://{addr}/sync"),
            addr,
            _data: data,
        }
    }

    /// The relay's data folder.
    pub(crate) fn data(&self) -> &Path {
        self._data.path()
    }

    /// The relay's process id, for signals.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
