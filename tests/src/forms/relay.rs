//! A relay on 127.0.0.1:0 with form limits of the test's choosing.

use std::net::SocketAddr;

use anyhow::Result;
use rapport_client::RelayConfig;
use rapport_server::{Config, FormLimits, Server};
use tokio::sync::oneshot;

use crate::relay::TempDir;

/// A relay with form limits of the test's choosing.
#[derive(Debug)]
pub struct Relay {
    pub addr: SocketAddr,
    pub relay_id: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), rapport_server::ServerError>>>,
}

impl Relay {
    pub async fn start(data: &TempDir, limits: FormLimits) -> Result<Self> {
        let server = Server::open(Config::new(data.path()))?.with_form_limits(limits);
        let relay_id = server.relay_id().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            relay_id,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Where and as whom clients reach this relay.
    pub fn config(&self) -> RelayConfig {
        RelayConfig {
            url: format!("ws://{}/sync", self.addr),
            audience: Some(self.relay_id.clone()),
        }
    }

    /// Stops gracefully and waits until the relay has finished.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
