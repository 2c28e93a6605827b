//! The observer replica of `rapport bench typing`: a full automerge
//! document that applies every change, for the *visible* latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use automerge::{ChangeHash, ReadDoc};
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::{DocMessage, Message};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite;

use super::{Base, OBSERVER_NICE, Phase, Shared, lock};
use crate::peer::{self, Link};

/// A replica that applies every change with automerge, on its own thread
/// (automerge's receive on a long history takes tens of milliseconds and
/// must not stall the editors' tasks).
///
/// When sync messages queue up while it is busy, it takes them all at once,
/// as one message carrying all their changes (the last one's heads and
/// bloom filter): a replica behind on a long history would fall further
/// behind with every message otherwise, since each receive pays for the
/// whole history again.
pub(super) struct Observer {
    socket_task: tokio::task::JoinHandle<Result<()>>,
    apply_thread: std::thread::JoinHandle<Applied>,
}

/// What an observer measured.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// Change sent → applied here.
    pub(super) visible: Vec<Duration>,
    /// How long each automerge receive took.
    pub(super) receives: Vec<Duration>,
}

impl Observer {
    pub(super) fn start(
        link: Link,
        id: DocumentId,
        base: &Base,
        shared: Arc<Shared>,
        ready: Arc<AtomicUsize>,
        phase: watch::Receiver<Phase>,
    ) -> Result<Self> {
        let Link { socket, us, server } = link;
        let mut state = automerge::sync::State::new();
        state.shared_heads = base.heads.clone();
        let mut sync = DocumentSync::new(id, us.clone(), base.doc.clone());
        sync.handle_peer_connected_as(server, us, Some(&state.encode()), peer::now());
        let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Message>();
        let stop = phase.clone();
        let apply_thread = std::thread::Builder::new()
            .name("bench-observer".into())
            .spawn(move || {
                // automerge's receive on a long history takes a core; it is
                // measured on its own (visible, receive). At a lower
                // priority it leaves the editors' sockets and the server
                // the CPU they need on a small machine, whichever server
                // runs. Best effort: without it the tails only get worse.
                #[cfg(unix)]
                let _ = rustix::process::setpriority_process(None, OBSERVER_NICE);
                let mut observer = Applier {
                    sync,
                    out: out_tx,
                    shared,
                    ready,
                    applied: Applied::default(),
                    heard: false,
                };
                observer.run(&in_rx, &stop);
                observer.applied
            })?;
        let socket_task = tokio::spawn(observer_socket(socket, in_tx, out_rx, phase));
        Ok(Self {
            socket_task,
            apply_thread,
        })
    }

    pub(super) async fn finish(self) -> Result<Applied> {
        tokio::time::timeout(Duration::from_secs(30), self.socket_task)
            .await
            .context("an observer did not stop")???;
        tokio::task::spawn_blocking(move || {
            self.apply_thread
                .join()
                .map_err(|_| anyhow!("the observer thread panicked"))
        })
        .await?
    }
}

async fn observer_socket(
    mut socket: peer::Socket,
    to_apply: std::sync::mpsc::Sender<Vec<u8>>,
    mut out: mpsc::UnboundedReceiver<Message>,
    mut phase: watch::Receiver<Phase>,
) -> Result<()> {
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() == Phase::Done { break; }
            }
            message = out.recv() => match message {
                Some(message) => socket.send(peer::frame(&message)).await?,
                None => break,
            },
            frame = socket.next() => match frame {
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    if to_apply.send(bytes.to_vec()).is_err() { break; }
                }
                Some(Ok(_)) => socket.flush().await?,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the server closed the observer's connection"),
            },
        }
    }
    // Dropping the sender ends the apply thread.
    drop(to_apply);
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    Ok(())
}

/// The observer's thread: applies what arrives, answers, measures.
struct Applier {
    sync: DocumentSync,
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    ready: Arc<AtomicUsize>,
    applied: Applied,
    heard: bool,
}

impl Applier {
    fn run(&mut self, frames: &std::sync::mpsc::Receiver<Vec<u8>>, phase: &watch::Receiver<Phase>) {
        self.send_effects();
        while let Ok(first) = frames.recv() {
            if *phase.borrow() == Phase::Done {
                break;
            }
            let mut batch = vec![first];
            batch.extend(frames.try_iter());
            let messages: Vec<DocMessage> = batch
                .iter()
                .filter_map(|bytes| match Message::decode(bytes) {
                    Ok(Message::Sync(m)) => Some(m),
                    _ => None,
                })
                .collect();
            for merged in rapport_protocol::sync::merge::merge_runs(messages) {
                self.apply(&merged);
            }
        }
    }

    fn apply(&mut self, message: &DocMessage) {
        let incoming = peer::change_hashes(message).unwrap_or_default();
        let new: Vec<ChangeHash> = incoming
            .iter()
            .map(|c| c.hash)
            .filter(|h| self.sync.doc().get_change_by_hash(h).is_none())
            .collect();
        let started = Instant::now();
        if self.sync.handle_sync(message, peer::now()).is_err() {
            return;
        }
        let applied = Instant::now();
        self.applied.receives.push(applied - started);
        let sent = lock(&self.shared.sent);
        for hash in new {
            if self.sync.doc().get_change_by_hash(&hash).is_some()
                && let Some((at, _)) = sent.get(&hash)
            {
                self.applied
                    .visible
                    .push(applied.saturating_duration_since(*at));
                self.shared.visible.fetch_add(1, Ordering::Release);
            }
        }
        drop(sent);
        self.send_effects();
        if !self.heard {
            self.heard = true;
            self.ready.fetch_add(1, Ordering::Release);
        }
    }

    fn send_effects(&mut self) {
        while let Some(effect) = self.sync.poll_effect() {
            if let Effect::Send(message) = effect {
                let _ = self.out.send(message);
            }
        }
    }
}
