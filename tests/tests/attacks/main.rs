//! The attacks an outside review found, performed over real sockets against
//! a real relay with self-minted keys: each asserts the refusal, and that
//! the other people keep working. One file for each class of attack:
//!
//! - documents no workspace lists belong to their first writer;
//! - a member refused again and again writes a bounded audit log;
//! - the automations document belongs to its workspace, and only admins
//!   write it;
//! - a decompression bomb is refused before it is inflated;
//! - one key cannot fill the memory of used tokens; tokens from before a
//!   restart, or from the future, are refused;
//! - presence messages are bounded in size and, for readers, in rate;
//!   connections are bounded per key;
//! - a flood of form submissions does not make each one cost more;
//! - answers to outsiders say nothing about which ids exist;
//! - a peer claiming another's peer id cannot silence their presence;
//! - a client on a comment thread changes only their own comments, never
//!   the thread itself, and writes in nobody else's name;
//! - webhooks reach no loopback address by name or by redirect, and what
//!   a receiver says reaches no member but admins.

mod audit;
mod automations;
mod floods;
mod forms;
mod oracles;
mod presence;
mod threads;
mod unlisted;
mod webhooks;

use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use ed25519_dalek::SigningKey;
use rapport_client::api::{ApiError, RelayApi};
use rapport_client::{RelayConfig, Repo};
use rapport_tests::peer::{PATIENCE, actor_of};
use rapport_tests::relay::{TempDir, TestRelay};

/// Runs the client's blocking HTTP calls without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A document holding one change by `key`'s actor.
fn doc_by(key: &SigningKey, device: u8, field: &str) -> Result<Automerge> {
    let mut doc = Automerge::new().with_actor(actor_of(key, device));
    doc.transact(|tx| tx.put(ROOT, field, "written"))
        .map_err(|failure| failure.error)?;
    Ok(doc)
}

/// A home folder whose identity is `key`, and the API of `relay` as it.
fn person(relay: &TestRelay, key: &SigningKey, dirs: &mut Vec<TempDir>) -> Result<RelayApi> {
    person_at(&relay.client_config(), key, dirs)
}

/// A home folder whose identity is `key`, and the API of the relay
/// `config` names as it.
fn person_at(config: &RelayConfig, key: &SigningKey, dirs: &mut Vec<TempDir>) -> Result<RelayApi> {
    let home = TempDir::new("attacks-person");
    let repo = Repo::init_with_key(home.path(), key.clone())?;
    dirs.push(home);
    Ok(RelayApi::new(config, repo.identity().clone())?)
}

/// The status and message of a refusal; an error for any other outcome.
fn refusal(result: Result<impl std::fmt::Debug, ApiError>) -> Result<(u16, String)> {
    match result {
        Err(ApiError::Refused { status, message }) => Ok((status, message)),
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
}

/// Waits until the relay counts `stored` changes stored in all.
async fn stored(relay: &TestRelay, stored: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while relay.metric("rapport_changes_stored_total").await? < stored {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay did not store {stored} changes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
