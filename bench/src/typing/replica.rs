//! A real `rapport-client` replica in live sync (as `rapport sync --watch`
//! runs it) on the typed document: *visible* is when a typed change is in
//! the replica's document, which it stores in redb as it goes. Unlike the
//! [`super::observer::Observer`], it is the product's own code that
//! decides how queued messages are received.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use automerge::{ChangeHash, ReadDoc};
use rapport_client::{RelayConfig, Repo};
use rapport_protocol::ids::DocumentId;
use tokio::sync::{broadcast, watch};

use super::{Phase, Shared, lock};
use crate::auth::Auth;

/// One live replica, and what it saw.
pub(super) struct LiveReplica {
    task: tokio::task::JoinHandle<Result<Vec<Duration>>>,
    home: PathBuf,
}

impl LiveReplica {
    /// A fresh replica in a temporary folder, syncing `id` live from
    /// `relay`; counts itself `ready` once it holds `base_heads`.
    pub(super) fn start(
        relay: &str,
        auth: Option<Arc<Auth>>,
        id: DocumentId,
        base_heads: Vec<ChangeHash>,
        shared: Arc<Shared>,
        ready: Arc<AtomicUsize>,
        phase: watch::Receiver<Phase>,
    ) -> Result<Self> {
        let home = std::env::temp_dir().join(format!(
            "rapport-bench-replica-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&home);
        let repo = Repo::init(&home).context("a replica for the bench")?;
        repo.want(id)?;
        let events = repo.subscribe();
        let config = match &auth {
            Some(auth) => {
                tokio::task::block_in_place(|| auth.join(repo.identity().clone()))?;
                auth.relay_config()
            }
            None => RelayConfig {
                url: relay.to_owned(),
                audience: None,
            },
        };
        let live = repo.sync_live(config);
        let task = tokio::spawn(async move {
            let seen = watch_changes(&repo, id, &base_heads, events, &shared, &ready, phase).await;
            live.stop().await;
            seen
        });
        Ok(Self { task, home })
    }

    /// Stops the replica; when each typed change became visible in it.
    pub(super) async fn finish(self) -> Result<Vec<Duration>> {
        let seen = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("a replica did not stop")??;
        let _ = std::fs::remove_dir_all(&self.home);
        seen
    }
}

async fn watch_changes(
    repo: &Repo,
    id: DocumentId,
    base_heads: &[ChangeHash],
    mut events: broadcast::Receiver<rapport_client::DocEvent>,
    shared: &Shared,
    ready: &AtomicUsize,
    mut phase: watch::Receiver<Phase>,
) -> Result<Vec<Duration>> {
    let mut visible = Vec::new();
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut loaded = false;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) if event.id != id => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Done {
                    break;
                }
                continue;
            }
        }
        let at = Instant::now();
        if !loaded {
            loaded = repo.read(id, |d| {
                base_heads.iter().all(|h| d.get_change_by_hash(h).is_some())
            })?;
            if loaded {
                ready.fetch_add(1, Ordering::Release);
            }
            continue;
        }
        let candidates: Vec<(ChangeHash, Instant)> = lock(&shared.sent)
            .iter()
            .filter(|(h, _)| !seen.contains(*h))
            .map(|(h, (sent, _))| (*h, *sent))
            .collect();
        let arrived: Vec<(ChangeHash, Instant)> = repo.read(id, |d| {
            candidates
                .into_iter()
                .filter(|(h, _)| d.get_change_by_hash(h).is_some())
                .collect()
        })?;
        for (hash, sent) in arrived {
            seen.insert(hash);
            visible.push(at.saturating_duration_since(sent));
            shared.replica_visible.fetch_add(1, Ordering::Release);
        }
    }
    Ok(visible)
}
