//! The control plane of a cluster (docs/cluster.md, section 4): the
//! cluster's id, and the workspaces every relay shares, in JetStream
//! key-value buckets.
//!
//! Bucket `rapport_control` holds, per workspace, its own row (`w.<id>`:
//! members, roles, shares, invites), per document its listing (`d.<id>`)
//! and, once deleted or erased, its tombstone (`t.<id>`). Every value
//! carries the audit events of the change that wrote it. A relay decides a
//! change on its copy, under its workspaces lock, and writes the row with
//! the revision its copy was read at: when another relay wrote it first,
//! JetStream refuses the write and the caller is told to try again. A
//! listing is written with `create`, so two relays listing one document
//! at once cannot both succeed. Every relay watches the bucket and takes
//! what the others wrote into its copy.
//!
//! The bucket's writes run on a thread of their own, with its own runtime
//! and NATS connection: a relay decides a change holding its workspaces
//! lock, which the relay's own runtime must never wait on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt as _;
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::token::{self, TokenId};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tracing::warn;

use super::buckets::{Op, Refused, WRITE_TIMEOUT, open_bucket, write};
use super::{ClusterError, connect, patiently};
use crate::workspace::{Outbound, Replicate, Tombstone, WorkspaceError};

/// The bucket of the workspaces.
const CONTROL: &str = "rapport_control";
/// The bucket of the tokens' nonces used, each kept until its token
/// could no longer pass anyway.
const NONCES: &str = "rapport_nonces";
/// The bucket of the notifications e-mailed, each kept for three days
/// (a task due today is e-mailed at most once a day).
const MAILED: &str = "rapport_mailed";
const MAILED_AGE: Duration = Duration::from_secs(3 * 24 * 3600);

/// What a relay does first, once in the whole cluster.
#[derive(Debug, Clone, Copy)]
enum Once {
    /// Lets a token in.
    Token,
    /// E-mails a notification.
    Mail,
}
const NONCE_AGE: Duration =
    Duration::from_secs(token::MAX_LIFETIME_SECS + 2 * token::DEFAULT_CLOCK_SKEW_SECS);

enum Request {
    Write {
        ops: Vec<Op>,
        /// The revision each key was written at, or why not.
        reply: std::sync::mpsc::SyncSender<Result<Vec<(String, u64)>, Refused>>,
    },
    /// Whether `key` is done here first, in the whole cluster.
    First {
        once: Once,
        key: String,
        reply: std::sync::mpsc::SyncSender<Result<bool, String>>,
    },
    /// A key's value as the bucket holds it now.
    Read {
        key: String,
        reply: tokio::sync::oneshot::Sender<Option<Entry>>,
    },
}

/// A key another relay (or this one, before it restarted) wrote.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) revision: u64,
    /// The value, or `None` once the key was deleted.
    pub(crate) value: Option<Value>,
}

/// What every value of the bucket holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Value {
    /// The workspace the key belongs to.
    pub(crate) workspace: String,
    /// The row as this relay stores it: the workspace without its
    /// documents, a listing, or a tombstone.
    pub(crate) row: serde_json::Value,
    /// The audit events of the change that wrote it.
    #[serde(default)]
    pub(crate) audit: Vec<serde_json::Value>,
}

/// What the watcher hands the relay.
#[derive(Debug)]
pub(crate) enum Watched {
    Entry(Entry),
    /// Every key written before the watch began has been handed over.
    CaughtUp,
}

/// A relay's link to the shared workspaces.
#[derive(Debug)]
pub(crate) struct Control {
    /// The bucket thread's connection, to tell whether NATS is reachable.
    client: async_nats::Client,
    requests: mpsc::UnboundedSender<Request>,
    /// The revision of each key this relay's copy holds.
    revisions: Mutex<HashMap<String, u64>>,
    /// This relay's name in the cluster.
    node: String,
}

impl Control {
    /// Starts the bucket's thread: it connects to NATS at `urls`, then
    /// watches the bucket and hands every key's value to the returned
    /// receiver, from the first (each key's last value) on.
    pub(crate) fn start(
        urls: Vec<String>,
        node: String,
        replicas: usize,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Watched>), ClusterError> {
        let (requests, mut asked) = mpsc::unbounded_channel::<Request>();
        let (watched_tx, watched) = mpsc::unbounded_channel();
        let name = node.clone();
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("rapport-control".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ClusterError::JetStream(e.to_string())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let opened = async {
                        let client = connect(&urls, &node).await?;
                        let js = jetstream::new(client.clone());
                        let bucket =
                            patiently(|| open_bucket(&js, CONTROL, Duration::ZERO, replicas))
                                .await?;
                        let nonces =
                            patiently(|| open_bucket(&js, NONCES, NONCE_AGE, replicas)).await?;
                        let mailed =
                            patiently(|| open_bucket(&js, MAILED, MAILED_AGE, replicas)).await?;
                        Ok::<_, ClusterError>((client, bucket, nonces, mailed))
                    };
                    let (bucket, nonces, mailed) = match opened.await {
                        Ok((client, bucket, nonces, mailed)) => {
                            let _ = ready_tx.send(Ok(client));
                            (bucket, nonces, mailed)
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::spawn(watch(bucket.clone(), watched_tx));
                    while let Some(request) = asked.recv().await {
                        match request {
                            Request::Write { ops, reply } => {
                                let _ = reply.send(write(&bucket, ops).await);
                            }
                            Request::Read { key, reply } => {
                                let _ = reply.send(read(&bucket, key).await);
                            }
                            Request::First { once, key, reply } => {
                                let bucket = match once {
                                    Once::Token => &nonces,
                                    Once::Mail => &mailed,
                                };
                                let _ = reply.send(first(bucket, key).await);
                            }
                        }
                    }
                });
            })
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        let client = ready
            .recv()
            .map_err(|_| ClusterError::JetStream("the control thread stopped".into()))??;
        Ok((
            Arc::new(Self {
                client,
                requests,
                revisions: Mutex::new(HashMap::new()),
                node: name,
            }),
            watched,
        ))
    }

    /// Whether the bucket's connection to NATS is up.
    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether `entry` is newer than what this relay's copy holds; if so,
    /// the copy is taken to hold it. Called holding the workspaces lock,
    /// as every write is.
    pub(crate) fn is_news(&self, entry: &Entry) -> bool {
        let mut revisions = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
        let known = revisions.entry(entry.key.clone()).or_insert(0);
        let news = entry.revision > *known;
        *known = (*known).max(entry.revision);
        news
    }

    /// Writes form `id` of `workspace` (its JSON, with the audit event of
    /// the change) for every relay: a form made or closed through one
    /// relay takes submissions, or refuses them, on all.
    pub(crate) fn put_form(
        &self,
        id: &str,
        workspace: &str,
        row: serde_json::Value,
        audit: Vec<serde_json::Value>,
    ) -> Result<(), WorkspaceError> {
        let value = Value {
            workspace: workspace.to_owned(),
            row,
            audit,
        };
        let value = serde_json::to_vec(&value)
            .map(Bytes::from)
            .map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
        self.run(vec![Op::Put {
            key: format!("f.{id}"),
            value,
        }])
    }

    /// Whether this is the first use of token `nonce` of `key` in the
    /// whole cluster: each relay refuses a token it saw before, and this
    /// refuses one another relay saw.
    pub(crate) fn first_use(&self, key: &PublicKey, nonce: &TokenId) -> Result<bool, String> {
        self.first(Once::Token, format!("{key}.{nonce}"))
    }

    /// Whether this relay is the first of the cluster to e-mail
    /// notification `id` to `key` (every relay makes the same
    /// notifications from the same changes; one sends each).
    pub(crate) fn first_to_mail(&self, key: &PublicKey, id: &str) -> Result<bool, String> {
        // A key holds letters, digits and `-_/=.`; an id, more.
        let id = bs58::encode(Sha256::digest(id.as_bytes())).into_string();
        self.first(Once::Mail, format!("{key}.{id}"))
    }

    fn first(&self, once: Once, key: String) -> Result<bool, String> {
        if !self.connected() {
            return Err("NATS is not reachable".into());
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.requests
            .send(Request::First { once, key, reply })
            .map_err(|_| "the control thread stopped".to_owned())?;
        answer
            .recv_timeout(WRITE_TIMEOUT)
            .map_err(|_| "no answer from NATS".to_owned())?
    }

    /// Whether `entry` was written by this relay.
    pub(crate) fn is_ours(&self, entry: &Entry) -> bool {
        entry
            .value
            .as_ref()
            .and_then(|v| v.row.get("node"))
            .and_then(|node| node.as_str())
            == Some(self.node.as_str())
    }

    /// Runs `ops` on the bucket's thread, waiting for its answer.
    fn run(&self, ops: Vec<Op>) -> Result<(), WorkspaceError> {
        if ops.is_empty() {
            return Ok(());
        }
        // Refused at once rather than after a timeout, which the caller
        // would wait out holding the workspaces lock.
        if !self.connected() {
            return Err(WorkspaceError::ControlUnavailable(
                "NATS is not reachable".into(),
            ));
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let timeout = WRITE_TIMEOUT * (ops.len() as u32 + 1);
        self.requests
            .send(Request::Write { ops, reply })
            .map_err(|_| WorkspaceError::ControlUnavailable("its thread stopped".into()))?;
        let written = answer
            .recv_timeout(timeout)
            .map_err(|_| WorkspaceError::ControlUnavailable("no answer from NATS".into()))?;
        match written {
            Ok(revisions) => {
                let mut known = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
                for (key, revision) in revisions {
                    let at = known.entry(key).or_insert(0);
                    *at = (*at).max(revision);
                }
                Ok(())
            }
            Err(Refused::Conflict) => Err(WorkspaceError::Conflict),
            Err(Refused::Unavailable(why)) => Err(WorkspaceError::ControlUnavailable(why)),
        }
    }

    /// The bucket's value of workspace `id`'s own row, read now rather
    /// than waited for: for a caller that misses what another relay
    /// wrote a moment ago (an invite made through it).
    pub(crate) async fn read_workspace(&self, id: &str) -> Option<Entry> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let key = workspace_key(id);
        self.requests.send(Request::Read { key, reply }).ok()?;
        tokio::time::timeout(WRITE_TIMEOUT, answer)
            .await
            .ok()?
            .ok()?
    }

    fn revision(&self, key: &str) -> Option<u64> {
        let revisions = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
        revisions.get(key).copied().filter(|r| *r > 0)
    }
}

impl Replicate for Control {
    /// Writes audit events that changed nothing under a key of their own,
    /// without waiting: they are in this relay's log already, and a
    /// refusal never waits on NATS.
    fn record(&self, workspace: &str, events: &[Vec<u8>]) {
        let audit: Vec<serde_json::Value> = events
            .iter()
            .filter_map(|event| serde_json::from_slice(event).ok())
            .collect();
        let value = Value {
            workspace: workspace.to_owned(),
            row: serde_json::json!({ "node": self.node }),
            audit,
        };
        let Ok(value) = serde_json::to_vec(&value) else {
            return;
        };
        let key = format!(
            "r.{workspace}.{}",
            bs58::encode(rand::random::<[u8; 12]>()).into_string()
        );
        // The answer goes nowhere: nobody waits for it.
        let (reply, _) = std::sync::mpsc::sync_channel(1);
        let ops = vec![Op::Create {
            key,
            value: Bytes::from(value),
        }];
        let _ = self.requests.send(Request::Write { ops, reply });
    }

    fn replicate(&self, change: Outbound<'_>) -> Result<(), WorkspaceError> {
        let rows = change.rows;
        let mut audit: Vec<serde_json::Value> = change
            .events
            .iter()
            .filter_map(|event| serde_json::from_slice(event).ok())
            .collect();
        let mut value = |row: serde_json::Value| -> Result<Bytes, WorkspaceError> {
            let value = Value {
                workspace: rows.id.clone(),
                row,
                // The events go with the first key written, once.
                audit: std::mem::take(&mut audit),
            };
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .map_err(|e| WorkspaceError::Invalid(e.to_string()))
        };
        let json = |bytes: &[u8]| -> Result<serde_json::Value, WorkspaceError> {
            serde_json::from_slice(bytes).map_err(|e| WorkspaceError::Invalid(e.to_string()))
        };
        let mut ops = Vec::new();
        // The decision first: the workspace's row at the revision it was
        // read at, or the new listings; what follows from it after.
        if let Some(row) = &rows.json {
            let key = workspace_key(&rows.id);
            let value = value(json(row)?)?;
            ops.push(match self.revision(&key) {
                Some(revision) => Op::Update {
                    key,
                    value,
                    revision,
                },
                None => Op::Create { key, value },
            });
        }
        for (doc, row) in &rows.documents {
            let key = listing_key(*doc);
            ops.push(match row {
                Some(row) if change.new.contains(doc) => Op::Create {
                    key,
                    value: value(json(row)?)?,
                },
                Some(row) => Op::Put {
                    key,
                    value: value(json(row)?)?,
                },
                None => Op::Delete { key },
            });
        }
        for (doc, tombstone) in change.tombstones {
            let row = serde_json::to_value(tombstone)
                .map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
            ops.insert(
                0,
                Op::Put {
                    key: tombstone_key(*doc),
                    value: value(row)?,
                },
            );
        }
        self.run(ops)
    }
}

/// Records `key` in `bucket`; whether nobody had.
async fn first(bucket: &kv::Store, key: String) -> Result<bool, String> {
    match tokio::time::timeout(WRITE_TIMEOUT, bucket.create(&key, Bytes::new())).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("NATS did not answer in time".into()),
    }
}

/// A key's value now, if it has one.
async fn read(bucket: &kv::Store, key: String) -> Option<Entry> {
    let entry = tokio::time::timeout(WRITE_TIMEOUT, bucket.entry(key))
        .await
        .ok()?
        .ok()??;
    let value = match entry.operation {
        kv::Operation::Put => Some(serde_json::from_slice(&entry.value).ok()?),
        kv::Operation::Delete | kv::Operation::Purge => None,
    };
    Some(Entry {
        key: entry.key,
        revision: entry.revision,
        value,
    })
}

/// Hands every key of the bucket to `to`, then every write after, until
/// the relay stops listening; after a lost connection it starts over, from
/// each key's last value.
async fn watch(bucket: kv::Store, to: mpsc::UnboundedSender<Watched>) {
    loop {
        match watch_once(&bucket, &to).await {
            Ok(()) => return,
            Err(e) => warn!(error = %e, "watching the shared workspaces failed; again in a second"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn watch_once(
    bucket: &kv::Store,
    to: &mpsc::UnboundedSender<Watched>,
) -> Result<(), ClusterError> {
    let held = bucket
        .status()
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))?
        .values();
    let mut entries = bucket
        .watch_with_history(">")
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))?;
    let mut caught_up = held == 0;
    if caught_up && to.send(Watched::CaughtUp).is_err() {
        return Ok(());
    }
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| ClusterError::JetStream(e.to_string()))?;
        let value = match entry.operation {
            kv::Operation::Put => match serde_json::from_slice(&entry.value) {
                Ok(value) => Some(value),
                Err(e) => {
                    warn!(key = %entry.key, error = %e, "a shared workspace value that does not parse");
                    continue;
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => None,
        };
        let last = entry.delta == 0;
        let sent = to.send(Watched::Entry(Entry {
            key: entry.key,
            revision: entry.revision,
            value,
        }));
        if sent.is_err() {
            return Ok(());
        }
        if !caught_up && last {
            caught_up = true;
            if to.send(Watched::CaughtUp).is_err() {
                return Ok(());
            }
        }
    }
    Err(ClusterError::JetStream("the watch ended".into()))
}

/// What a key names.
#[derive(Debug, PartialEq)]
pub(crate) enum Key {
    Workspace(String),
    Listing(DocumentId),
    Tombstone(DocumentId),
    /// A public form (`forms`), by its id.
    Form(String),
    /// Audit events that changed nothing (a refused change, access or
    /// invite) of a workspace, written by the relay that refused.
    Refusal(String),
}

impl Key {
    pub(crate) fn parse(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once('.')?;
        match kind {
            "w" => Some(Key::Workspace(rest.to_owned())),
            "d" => rest.parse().ok().map(Key::Listing),
            "t" => rest.parse().ok().map(Key::Tombstone),
            "f" => Some(Key::Form(rest.to_owned())),
            "r" => rest
                .split_once('.')
                .map(|(workspace, _)| Key::Refusal(workspace.to_owned())),
            _ => None,
        }
    }
}

fn workspace_key(id: &str) -> String {
    format!("w.{id}")
}

fn listing_key(document: DocumentId) -> String {
    format!("d.{document}")
}

fn tombstone_key(document: DocumentId) -> String {
    format!("t.{document}")
}

/// A tombstone as a value carries it.
pub(crate) fn tombstone_of(value: &Value) -> Option<Tombstone> {
    serde_json::from_value(value.row.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_others_are_none() {
        let doc = DocumentId::from_bytes([7; 16]);
        assert_eq!(
            Key::parse(&workspace_key("ws-abc")),
            Some(Key::Workspace("ws-abc".into()))
        );
        assert_eq!(Key::parse(&listing_key(doc)), Some(Key::Listing(doc)));
        assert_eq!(Key::parse(&tombstone_key(doc)), Some(Key::Tombstone(doc)));
        assert_eq!(Key::parse("d.not-an-id"), None);
        assert_eq!(Key::parse("x.y"), None);
        assert_eq!(Key::parse("nodot"), None);
    }
}
