//! A relay in a process of its own (`relay-child`), for tests that measure
//! the relay's own memory (a relay in the test's process shares it with
//! every other test running at the same time) or kill it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use crate::peer::PATIENCE;

/// The relay as a child process, killed on drop.
#[derive(Debug)]
pub struct ChildRelay {
    child: Child,
    /// Closing it stops the relay gracefully.
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    pub relay_id: String,
    bin: PathBuf,
    data: PathBuf,
    limits: Vec<String>,
}

impl ChildRelay {
    /// Starts `bin` (the `relay-child` binary, `env!("CARGO_BIN_EXE_relay-child")`
    /// in an integration test) on `data` with tokens required and `limits`
    /// (`("max_change_bytes", n)`…) changed, on any free port, and waits
    /// until it listens.
    pub async fn spawn(bin: &Path, data: &Path, limits: &[(&str, usize)]) -> Result<Self> {
        let limits = limits.iter().map(|(name, n)| format!("{name}={n}"));
        Self::spawn_on(
            bin.to_owned(),
            data.to_owned(),
            limits.collect(),
            "127.0.0.1:0".parse()?,
        )
        .await
    }

    /// Starts `bin` on `data` with these arguments after `DATA ADDR`
    /// (`relay-child`'s `[COMPACT_AFTER_CHANGES] [LIMIT=N]...`), listening
    /// on `addr`, and waits until it listens.
    pub async fn spawn_on(
        bin: PathBuf,
        data: PathBuf,
        limits: Vec<String>,
        addr: SocketAddr,
    ) -> Result<Self> {
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(&bin)
                .arg(&data)
                .arg(addr.to_string())
                .args(&limits)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            let stdin = child.stdin.take();
            let stdout = child.stdout.take();
            // From here on, a failure kills the child on drop.
            let mut this = Self {
                child,
                stdin,
                addr,
                relay_id: String::new(),
                bin,
                data,
                limits,
            };
            let mut line = String::new();
            BufReader::new(stdout.context("no stdout")?).read_line(&mut line)?;
            let mut words = line.split_whitespace();
            ensure!(
                words.next() == Some("LISTENING"),
                "relay-child did not start: {line:?}"
            );
            this.addr = words.next().context("no address")?.parse()?;
            this.relay_id = words.next().context("no relay id")?.to_owned();
            Ok(this)
        })
        .await?
    }

    /// The WebSocket URL, without a token.
    pub fn url(&self) -> String {
        format!("ws://{}/sync", self.addr)
    }

    /// Where and as whom clients reach this relay.
    pub fn client_config(&self) -> rapport_client::RelayConfig {
        rapport_client::RelayConfig {
            url: self.url(),
            audience: Some(self.relay_id.clone()),
        }
    }

    /// The relay's peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        crate::process::peak_rss_kib_of(self.child.id())
    }

    /// One value of the relay's `/metrics`.
    pub async fn metric(&self, name: &str) -> Result<u64> {
        crate::relay::metric_at(self.addr, name).await
    }

    /// Stops gracefully and starts again on the same data folder, port
    /// and limits, as an operator restarting the relay does.
    pub async fn restart_in_place(&mut self) -> Result<()> {
        self.wait_stopped().await?;
        let (bin, data, limits) = (self.bin.clone(), self.data.clone(), self.limits.clone());
        *self = Self::spawn_on(bin, data, limits, self.addr).await?;
        Ok(())
    }

    /// Stops gracefully (closes its stdin) and waits for a clean exit.
    pub async fn stop(mut self) -> Result<()> {
        self.wait_stopped().await
    }

    /// SIGKILL, and reap.
    pub fn sigkill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    async fn wait_stopped(&mut self) -> Result<()> {
        self.stdin = None;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "relay-child exited with {status}");
                return Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "relay-child did not stop"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
