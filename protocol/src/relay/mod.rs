//! The relay's side of sync, without materializing documents.
//!
//! A relay that fed every message through an `automerge::Automerge` would
//! pay for the whole history on each keystroke: on a document with a quarter
//! of a million changes, receiving one new change costs about 110 ms. So the
//! relay keeps, per document, only the change graph (hash, dependencies,
//! actor, raw bytes; see [`ChangeGraph`]) and answers automerge's sync
//! protocol from it ([`RelayDoc`]), with the same per-peer state and the
//! same decisions as `automerge::sync`. A new change costs a look-up of its
//! dependencies and a short walk back from the heads, whatever the history.
//!
//! Driving a [`RelayDoc`]:
//!
//! 1. [`RelayDoc::add_peer`] when a connection opens the document;
//! 2. [`RelayDoc::receive`] for each `sync` or `request`, with a check
//!    that refuses changes by actor (identity binding, read-only access);
//! 3. optionally [`RelayDoc::forward_early`], which sends the new changes
//!    to the other peers at once, under the heads the relay held before;
//! 4. store [`Prepared::to_store`] durably, then [`RelayDoc::commit`], or
//!    [`RelayDoc::abort`] if the store failed;
//! 5. carry out [`RelayDoc::poll_effect`] until it returns `None`.
//!
//! No change is acknowledged, or named among the relay's heads, before
//! step 4 completes.

mod chunks;
mod doc;
mod graph;
mod peer;

pub use chunks::{ChunkError, ChunkLimits, split_changes, split_changes_within};
pub use doc::{
    ConnId, DecodedSync, MAX_QUEUED_CHANGES, NewSnapshot, PackJob, Prepared, RelayDoc, RelayEffect,
    StoredDocument,
};
pub use graph::{ChangeGraph, StoredChange};
