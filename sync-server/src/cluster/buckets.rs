//! The key-value buckets of a cluster: opening one, and writing to it
//! with the checks a write asks for.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

use super::ClusterError;

/// How long one write to a bucket may take before the change is refused.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a bucket whose values go after `max_age` (zero: never), making
/// it if no relay has yet. The bucket's stream is made here as the
/// key-value convention has it, not with async-nats's `create_key_value`,
/// whose account query does not parse what a 2.9 server answers.
pub(super) async fn open_bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store, ClusterError> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        max_age,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| ClusterError::JetStream(e.to_string()))?;
    js.get_key_value(name)
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))
}

/// One write to the bucket.
#[derive(Debug)]
pub(super) enum Op {
    /// Only if the key holds nothing (or was deleted).
    Create {
        key: String,
        value: Bytes,
    },
    /// Only if the key is still at `revision`.
    Update {
        key: String,
        value: Bytes,
        revision: u64,
    },
    Put {
        key: String,
        value: Bytes,
    },
    Delete {
        key: String,
    },
}

impl Op {
    pub(super) fn key(&self) -> &str {
        match self {
            Op::Create { key, .. }
            | Op::Update { key, .. }
            | Op::Put { key, .. }
            | Op::Delete { key } => key,
        }
    }
}

/// Why a write was not taken.
#[derive(Debug)]
pub(super) enum Refused {
    /// Another relay wrote the key first.
    Conflict,
    Unavailable(String),
}

/// Runs `ops` in order, stopping at the first refused.
pub(super) async fn write(bucket: &kv::Store, ops: Vec<Op>) -> Result<Vec<(String, u64)>, Refused> {
    let mut revisions = Vec::with_capacity(ops.len());
    for op in ops {
        let key = op.key().to_owned();
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            match op {
                Op::Create { key, value } => bucket.create(&key, value).await.map_err(|e| match e
                    .kind()
                {
                    kv::CreateErrorKind::AlreadyExists => Refused::Conflict,
                    _ => Refused::Unavailable(e.to_string()),
                }),
                Op::Update {
                    key,
                    value,
                    revision,
                } => bucket
                    .update(&key, value, revision)
                    .await
                    .map_err(|e| match e.kind() {
                        kv::UpdateErrorKind::WrongLastRevision => Refused::Conflict,
                        _ => Refused::Unavailable(e.to_string()),
                    }),
                Op::Put { key, value } => bucket
                    .put(&key, value)
                    .await
                    .map_err(|e| Refused::Unavailable(e.to_string())),
                Op::Delete { key } => bucket
                    .delete(&key)
                    .await
                    .map(|()| 0)
                    .map_err(|e| Refused::Unavailable(e.to_string())),
            }
        })
        .await
        .map_err(|_| Refused::Unavailable("NATS did not answer in time".into()))??;
        revisions.push((key, written));
    }
    Ok(revisions)
}
