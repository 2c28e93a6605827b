//! rapport's replica: every document a person may see, stored in redb and
//! synced through a relay.
//!
//! A [`Repo`] lives in a home folder holding the person's identity (an
//! ed25519 key, readable by its owner only) and one redb database with every
//! document: a snapshot plus the changes since, the sync state per relay, an
//! index for fast listing (derived, rebuildable) and the changes relays
//! refused. A change returns only once it is durable. [`Repo::sync_once`]
//! and [`Repo::sync_live`] sync with a relay (or the JS sync server);
//! [`Repo::sync_once_through`] and [`Repo::sync_live_through`] with one
//! relay at several addresses, such as the relays of a cluster.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use automerge::transaction::Transactable;
//! use rapport_client::{RelayConfig, Repo};
//!
//! let repo = Repo::open("/home/ann/.local/share/rapport".as_ref())?;
//! let (id, _) = repo.create(|tx| tx.put(automerge::ROOT, "name", "Acme"))?;
//! let relay = RelayConfig { url: "ws://127.0.0.1:3030/sync".into(), audience: Some("relay-…".into()) };
//! repo.sync_once(&relay, std::time::Duration::from_secs(60), |p| {
//!     println!("{}/{} documents", p.documents_synced, p.documents_total)
//! })
//! .await?;
//! # let _ = id;
//! # Ok(())
//! # }
//! ```

pub mod api;
mod batch;
pub mod dashboard;
pub mod error;
pub mod failover;
pub mod history;
pub mod identity;
pub mod index;
pub mod relay_url;
mod repo;
pub mod store;
pub mod sync;
pub mod tls;
pub mod transport;

pub use error::ClientError;
pub use failover::{Relays, Synced};
pub use repo::{DocEvent, RefusedChanges, Repo, now};
pub use sync::{LiveSync, Progress, RelayConfig, SyncError};

/// The index entry of a document, as stored in the index table; `None` for
/// a document that is not a record.
fn index_bytes(doc: &automerge::Automerge) -> Option<Vec<u8>> {
    index::index_entry(doc).and_then(|entry| entry.to_bytes().ok())
}
