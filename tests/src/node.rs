//! A `node` child driven over JSON lines, for the JS peers
//! ([`crate::js_peer`]) and the browser driver ([`crate::browser`]).
//!
//! The child runs a script in an npm folder (`tests/js`, `web/`) with its
//! stdin, stdout and stderr piped. A thread reads stdout into a channel of
//! lines; another collects stderr (up to 64 KiB), included in every error
//! and echoed as it comes when `RAPPORT_JS_LOG=1`. Scripts print one ready
//! line (`READY …`, `LISTENING …`: [`NodeChild::wait_for_line`]), then
//! answer JSON commands one line each: `{"id": N, "ok": true, …}` or
//! `{"id": N, "ok": false, "error": "…"}`. The child is killed when the
//! value is dropped, and the scripts exit by themselves when their stdin
//! closes, so a test process that dies leaves no node process behind.
//!
//! Commands may overlap ([`NodeChild::send`] several, then
//! [`NodeChild::answer`] each): an answer that arrives for another command
//! is kept until that one is asked for.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

/// Slack on top of a command's own `timeoutMs` before Rust gives up on the
/// answer.
const ANSWER_SLACK: Duration = Duration::from_secs(5);
/// At most this much of a child's stderr is kept.
const STDERR_CAP: usize = 64 * 1024;

/// A command sent and not answered yet: what [`NodeChild::answer`] waits
/// for.
#[derive(Debug)]
#[must_use = "a sent command's answer (or failure) is read with NodeChild::answer"]
pub struct Pending {
    id: u64,
    op: Value,
    wait: Duration,
}

/// A node child with its stdout lines on a channel and its stderr collected.
#[derive(Debug)]
pub struct NodeChild {
    /// The command line, for messages about the process.
    what: String,
    /// The script, for messages about its commands.
    script: String,
    child: Child,
    /// Held open: node exits when it closes.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
    /// Answers that came while another command's was awaited.
    early: BTreeMap<u64, Value>,
}

impl NodeChild {
    /// Starts `node SCRIPT ARGS…` in `dir` (an npm folder whose packages
    /// the caller has installed, e.g. with [`crate::js::ensure_installed_in`]).
    pub fn spawn(dir: &Path, script: &str, args: &[&str]) -> Result<Self> {
        let what = format!("node {script} {}", args.join(" "));
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{what}` in {}", dir.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("node's stdout was not piped")?;
        let stderr_pipe = child.stderr.take().context("node's stderr was not piped")?;

        let (tx, lines) = mpsc::channel();
        thread::Builder::new()
            .name(format!("{script} stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .context("spawning the stdout reader thread")?;

        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let echo = std::env::var_os("RAPPORT_JS_LOG").is_some_and(|v| !v.is_empty() && v != "0");
        let tag = script.to_owned();
        thread::Builder::new()
            .name(format!("{script} stderr"))
            .spawn(move || collect_stderr(stderr_pipe, &sink, echo, &tag))
            .context("spawning the stderr reader thread")?;

        Ok(Self {
            what,
            script: script.to_owned(),
            child,
            stdin,
            lines,
            stderr,
            next_id: 1,
            early: BTreeMap::new(),
        })
    }

    /// What the child printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for the first stdout line starting with `prefix` and returns
    /// the rest of it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let awaited = || format!("a `{prefix}` line within {timeout:?}");
        loop {
            let line = self.next_line(deadline, awaited)?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_owned());
            }
        }
    }

    /// The child's next stdout line before `deadline`; the error names
    /// what was `awaited`, how the child ended if it did, and its stderr.
    fn next_line(&mut self, deadline: Instant, awaited: impl Fn() -> String) -> Result<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => bail!(
                "`{}` printed no {}; stderr:\n{}",
                self.what,
                awaited(),
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.wait_briefly();
                bail!(
                    "`{}` exited ({status}) before printing {}; stderr:\n{}",
                    self.what,
                    awaited(),
                    self.stderr()
                )
            }
        }
    }

    /// Sends one command (a JSON object; its `id` is assigned here) and
    /// returns the answer's `ok: true` object. An `ok: false` answer becomes
    /// an error with the script's error text. Waits for the command's
    /// `timeoutMs`, or `default_wait` if it has none, plus a few seconds.
    pub fn request(&mut self, cmd: Value, default_wait: Duration) -> Result<Value> {
        let pending = self.send(cmd, default_wait)?;
        let op = pending.op.clone();
        let answer = self.answer(pending)?;
        if answer.get("ok") == Some(&Value::Bool(true)) {
            return Ok(answer);
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| answer.to_string(), str::to_owned);
        bail!("{op} failed in {}: {error}", self.script);
    }

    /// Sends one command without waiting for its answer.
    pub fn send(&mut self, mut cmd: Value, default_wait: Duration) -> Result<Pending> {
        let id = self.next_id;
        self.next_id += 1;
        let Some(obj) = cmd.as_object_mut() else {
            bail!("a command must be a JSON object, not {cmd}");
        };
        obj.insert("id".into(), json!(id));
        let op = obj.get("op").cloned().unwrap_or(Value::Null);
        let wait = obj
            .get("timeoutMs")
            .and_then(Value::as_u64)
            .map_or(default_wait, Duration::from_millis)
            + ANSWER_SLACK;
        let stdin = self.stdin.as_mut().context("the child's stdin is closed")?;
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .with_context(|| {
                format!(
                    "sending {op} to `{}`; stderr:\n{}",
                    self.what,
                    self.stderr()
                )
            })?;
        Ok(Pending { id, op, wait })
    }

    /// The whole answer to a sent command (`ok` true or false), waiting
    /// for as long as [`NodeChild::send`] allowed it.
    pub fn answer(&mut self, pending: Pending) -> Result<Value> {
        let Pending { id, op, wait } = pending;
        if let Some(answer) = self.early.remove(&id) {
            return Ok(answer);
        }
        let deadline = Instant::now() + wait;
        let awaited = || format!("answer to {op} #{id} within {wait:?}");
        loop {
            let line = self.next_line(deadline, awaited)?;
            let answer: Value = serde_json::from_str(&line)
                .with_context(|| format!("`{}` printed a non-JSON line: {line}", self.script))?;
            match answer.get("id").and_then(Value::as_u64) {
                Some(got) if got == id => return Ok(answer),
                // Another command's (sent earlier, or one whose wait ran
                // out on our side): kept for whoever asks.
                Some(other) => {
                    self.early.insert(other, answer);
                }
                None => bail!("`{}` answered without an id: {line}", self.script),
            }
        }
    }

    /// The exit status if the child ends within a moment, for messages.
    fn wait_briefly(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => return "still running".to_owned(),
                Err(e) => return format!("status unknown: {e}"),
            }
        }
    }

    /// Closes stdin (the scripts exit on EOF) and waits up to `timeout`,
    /// then kills.
    pub fn stop(&mut self, timeout: Duration) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!(
                        "`{}` exited with {status}; stderr:\n{}",
                        self.what,
                        self.stderr()
                    );
                }
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        bail!(
            "`{}` did not exit within {timeout:?} of stdin closing; killed",
            self.what
        )
    }

    /// Kills the child (if it still runs) and reaps it.
    pub fn kill(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for NodeChild {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect_stderr(pipe: impl Read, sink: &Mutex<String>, echo: bool, tag: &str) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if echo {
            eprintln!("[{tag}] {line}");
        }
        let mut buf = sink.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.len() < STDERR_CAP {
            let _ = writeln!(buf, "{line}");
        }
    }
}
