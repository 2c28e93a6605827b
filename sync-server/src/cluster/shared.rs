//! What every relay of a cluster shares from the start (bucket
//! `rapport_cluster`): the cluster's id, every relay's token audience, and
//! the relay key that writes forms' and automations' changes.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

use super::buckets::open_bucket;
use super::{ClusterError, check_replicas, connect, patiently};

/// The bucket of the cluster's own facts.
const CLUSTER: &str = "rapport_cluster";

/// What every relay of a cluster shares from the start.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    /// The audience of every token: the id of the first relay that
    /// asked, so that a relay that becomes a cluster keeps its clients'
    /// tokens.
    pub(crate) id: String,
    /// The secret of the relay's own key, which writes forms' and
    /// automations' changes and signs webhooks, the same on every relay.
    pub(crate) secret: [u8; 32],
}

/// Agrees with the other relays on what they share (the first relay to
/// ask sets it), before the relay opens, on a thread of its own.
pub(crate) fn agree(urls: &[String], node: &str, replicas: usize) -> Result<Shared, ClusterError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ClusterError::JetStream(e.to_string()))?;
                runtime.block_on(async {
                    let client = connect(urls, node).await?;
                    check_replicas(&client, replicas)?;
                    let js = jetstream::new(client);
                    let bucket =
                        patiently(|| open_bucket(&js, CLUSTER, Duration::ZERO, replicas)).await?;
                    let id = first_of(&bucket, "id", node.as_bytes().to_vec()).await?;
                    let secret =
                        first_of(&bucket, "relay_key", rand::random::<[u8; 32]>().to_vec()).await?;
                    Ok(Shared {
                        id: String::from_utf8(id).map_err(|_| {
                            ClusterError::JetStream("the cluster's id is not text".into())
                        })?,
                        secret: secret.try_into().map_err(|_| {
                            ClusterError::JetStream(
                                "the cluster's relay key is not 32 bytes".into(),
                            )
                        })?,
                    })
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(ClusterError::JetStream(
                    "the agreeing thread panicked".into(),
                ))
            })
    })
}

/// The value of `key`: `ours` if no relay set it before.
async fn first_of(bucket: &kv::Store, key: &str, ours: Vec<u8>) -> Result<Vec<u8>, ClusterError> {
    match bucket.create(key, Bytes::from(ours.clone())).await {
        Ok(_) => Ok(ours),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => bucket
            .get(key)
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))?
            .map(|value| value.to_vec())
            .ok_or_else(|| ClusterError::JetStream(format!("the cluster's {key} vanished"))),
        Err(e) => Err(ClusterError::JetStream(e.to_string())),
    }
}
