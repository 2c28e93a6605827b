//! Servers the bench starts itself, as child processes on 127.0.0.1: our
//! relay (`many-docs`, `cluster`) and a nats-server with JetStream
//! (`cluster`). Each is stopped when dropped, so a run that fails part way
//! stops what it started.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::machine::Watched;

/// How long a relay may take to start before the bench gives up.
const START_LIMIT: Duration = Duration::from_secs(300);

/// How long a stopped relay may take to exit before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// Our relay, a child process on a free port of 127.0.0.1 with a data
/// folder of its own; its output goes to `relay.log` in that folder.
#[derive(Debug)]
pub(crate) struct Relay {
    binary: PathBuf,
    data: PathBuf,
    port: u16,
    /// The options besides `--listen` and `--data`.
    args: Vec<String>,
    child: Child,
}

impl Relay {
    /// Starts `binary` with `args` and waits until `/healthz` answers.
    pub(crate) async fn start(binary: &Path, data: &Path, args: Vec<String>) -> Result<Self> {
        let port = free_port()?;
        let mut relay = Self {
            child: spawn_relay(binary, data, port, &args)?,
            binary: binary.to_owned(),
            data: data.to_owned(),
            port,
            args,
        };
        relay.wait_healthy().await?;
        Ok(relay)
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/sync", self.port)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn watched(&self) -> Watched {
        Watched::new(self.pid())
    }

    /// The value of a counter or gauge of the relay's `/metrics`.
    pub(crate) async fn metric(&self, name: &str) -> Option<f64> {
        let page = get(self.port, "/metrics").await?;
        page.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// Waits until `/healthz` answers; returns how long it took.
    async fn wait_healthy(&mut self) -> Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the relay exited ({status}) while starting; the end of its log:\n{}",
                    log_tail(&self.data.join("relay.log"))
                );
            }
            if healthy(self.port).await {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("the relay did not start within {START_LIMIT:?}")
    }

    /// Stops the relay as an operator would (SIGTERM), and waits for it.
    pub(crate) fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let asked = Instant::now();
        while asked.elapsed() < STOP_LIMIT {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Starts the relay again on the same folder and port; returns how
    /// long it took until `/healthz` answered.
    pub(crate) async fn restart(&mut self) -> Result<Duration> {
        self.child = spawn_relay(&self.binary, &self.data, self.port, &self.args)?;
        self.wait_healthy().await
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn spawn_relay(binary: &Path, data: &Path, port: u16, args: &[String]) -> Result<Child> {
    std::fs::create_dir_all(data)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("relay.log"))?;
    Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// Whether the relay on `port` answers `/healthz` with 200.
async fn healthy(port: u16) -> bool {
    get(port, "/healthz")
        .await
        .is_some_and(|response| response.split(' ').nth(1) == Some("200"))
}

/// The whole response (head and body) of an HTTP/1.0 `GET` of `path`
/// from 127.0.0.1:`port`, if one came within 2 s.
async fn get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()?
        .ok()
}

/// The last lines of a log file, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A nats-server with JetStream on a free port of 127.0.0.1, storing in
/// a folder of the bench's; killed when dropped.
#[derive(Debug)]
pub(crate) struct Nats {
    port: u16,
    child: Child,
}

impl Nats {
    /// Starts `binary` (`-js -sd STORE`) and waits until it takes
    /// connections.
    pub(crate) fn start(binary: &Path, store: &Path) -> Result<Self> {
        std::fs::create_dir_all(store)?;
        let port = free_port()?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut nats = Self { port, child };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nats.child.try_wait()? {
                bail!("{} exited ({status}) while starting", binary.display());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("{} did not take connections within 20 s", binary.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nats)
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub(crate) fn watched(&self) -> Watched {
        Watched::new(self.child.id())
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `given`, or `nats-server` from `PATH`, or `/usr/sbin/nats-server`.
pub(crate) fn nats_binary(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|path| path.is_file());
    on_path.context("no nats-server on PATH nor at /usr/sbin/nats-server; name one with --nats")
}
