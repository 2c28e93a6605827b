//! Syncing many documents over one connection, a window of them at a time,
//! with automerge's own sync ([`DocumentSync`]): how a replica uploads its
//! records or fetches a workspace. Counts frames, bytes and messages per
//! document on the way.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::Message;
use tokio_tungstenite::tungstenite;

use super::peer::{self, Link};
use super::progress::{Progress, bar};

/// What syncing the documents took.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) elapsed: Duration,
    pub(crate) frames_out: usize,
    pub(crate) frames_in: usize,
    /// WebSocket payload bytes (the CBOR messages), both ways.
    pub(crate) bytes_out: u64,
    pub(crate) bytes_in: u64,
    /// Per document: messages we sent until it was done (a round trip each).
    pub(crate) sent_per_doc: Vec<usize>,
    pub(crate) unavailable: usize,
}

/// Syncs every document of `docs` with the server at the other end of
/// `link`, at most `window` at once, until `done` says each is finished
/// or `limit` passes.
pub(crate) async fn sync_all(
    link: &mut Link,
    docs: Vec<DocumentSync>,
    window: usize,
    limit: Duration,
    what: &str,
    progress: &mut Progress,
    done: impl Fn(&DocumentSync, &rapport_protocol::ids::PeerId) -> bool,
) -> Result<(Traffic, Vec<DocumentSync>)> {
    let started = Instant::now();
    let total = docs.len();
    let mut waiting: VecDeque<DocumentSync> = docs.into();
    let mut open: HashMap<DocumentId, (DocumentSync, usize)> = HashMap::new();
    let mut finished = Vec::with_capacity(total);
    let mut traffic = Traffic::default();
    let server = link.server.clone();
    let deadline = tokio::time::Instant::now() + limit;
    while finished.len() < total {
        while open.len() < window.max(1) {
            let Some(mut sync) = waiting.pop_front() else {
                break;
            };
            sync.handle_peer_connected(server.clone(), peer::now());
            let sent = flush(link, &mut sync, &mut traffic).await?;
            open.insert(sync.id(), (sync, sent));
        }
        let next = tokio::time::timeout_at(deadline, link.socket.next())
            .await
            .map_err(|_| {
                anyhow!(
                    "{what}: {} of {total} documents done after {limit:?}",
                    finished.len()
                )
            })?;
        let frame = next.ok_or_else(|| anyhow!("{what}: the server closed the connection"))??;
        let tungstenite::Message::Binary(bytes) = frame else {
            continue;
        };
        traffic.frames_in += 1;
        traffic.bytes_in += bytes.len() as u64;
        let id = match Message::decode(&bytes) {
            Ok(Message::Sync(m)) => {
                let Some((sync, sent)) = open.get_mut(&m.document_id) else {
                    continue;
                };
                sync.handle_sync(&m, peer::now())?;
                *sent += flush(link, sync, &mut traffic).await?;
                m.document_id
            }
            Ok(Message::DocUnavailable(m)) => {
                if let Some((sync, _)) = open.get_mut(&m.document_id) {
                    sync.handle_unavailable(&m);
                    traffic.unavailable += 1;
                }
                m.document_id
            }
            Ok(Message::Error(e)) => bail!("{what}: the server sent an error: {}", e.message),
            _ => continue,
        };
        if open.get(&id).is_some_and(|(sync, _)| done(sync, &server)) {
            let (sync, sent) = open.remove(&id).expect("checked just above");
            traffic.sent_per_doc.push(sent);
            finished.push(sync);
            let n = finished.len() as f64;
            progress.update(format!(
                "{} {what}: {}/{total} documents",
                bar(n, total as f64),
                finished.len()
            ));
        }
    }
    progress.clear();
    traffic.elapsed = started.elapsed();
    Ok((traffic, finished))
}

/// Sends the document's queued messages; returns how many.
async fn flush(link: &mut Link, sync: &mut DocumentSync, traffic: &mut Traffic) -> Result<usize> {
    let mut sent = 0;
    while let Some(effect) = sync.poll_effect() {
        if let Effect::Send(message) = effect {
            let frame = peer::frame(&message);
            traffic.frames_out += 1;
            traffic.bytes_out += frame.len() as u64;
            link.socket.send(frame).await?;
            sent += 1;
        }
    }
    Ok(sent)
}
