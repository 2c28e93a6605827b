//! A nats-server with JetStream, for the cluster's tests: started on
//! 127.0.0.1 with a temporary store, killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

/// A nats-server with JetStream on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct Nats {
    child: Child,
    pub addr: SocketAddr,
    store: PathBuf,
}

impl Nats {
    pub fn start(store: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Self::start_on(store, port)
    }

    pub fn start_on(store: &Path, port: u16) -> Result<Self> {
        let binary = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|b| {
                Command::new(b)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok()
            })
            .context("nats-server is not installed (.ci/run installs it with apt)")?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let nats = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            store: store.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(nats.addr).is_err() {
            ensure!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = Self::start_on(&self.store.clone(), self.addr.port())?;
        Ok(())
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
