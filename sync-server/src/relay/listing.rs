//! `rapport/documents`, in pages. A member of a workspace of 100,000
//! documents is told of all of them on connecting: in one message that was
//! 3.5 MB a connection, and 500 connections queued 1.5 GiB in the relay
//! and held up every forward behind them. A list goes out
//! [`DOCUMENTS_PER_PAGE`] ids at a time, the next page once the previous
//! one has been written to the socket, so a connection has at most one
//! page of it queued and forwards go out between pages.
//!
//! A connection runs one pass of its list at a time. An announcement
//! during a pass (its access widened) asks for one more pass after it,
//! however many arrive: the client's list is complete at the end of each.
//!
//! Writing an id as text (bs58check) is most of a page's cost: 100,000
//! ids took 95 ms, for every connection. While passes run, each id's text
//! is kept ([`IdTexts`]) and every page copies it; the texts go when the
//! last pass ends.

use std::collections::HashMap;
use std::sync::Arc;

use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::ConnId;
use rapport_protocol::wire::Documents;
use tracing::{Instrument, debug, debug_span};

use super::{Relay, lock};
use crate::access::Identity;
use crate::outbox::{Drain, Ticket};
use crate::workspace::Cursor;

/// Ids in one page of `rapport/documents`: about 60 KB.
pub(crate) const DOCUMENTS_PER_PAGE: usize = 2_000;

/// Document ids as text, kept while any list is going out.
#[derive(Debug, Default)]
pub(super) struct IdTexts {
    /// Passes under way, on every connection.
    passes: usize,
    texts: HashMap<DocumentId, Box<str>>,
}

/// Counts a pass as under way until it is dropped; the last one to go
/// drops the texts.
struct Pass<'a>(&'a Relay);

impl<'a> Pass<'a> {
    fn start(relay: &'a Relay) -> Self {
        lock(&relay.id_texts).passes += 1;
        Self(relay)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut cache = lock(&self.0.id_texts);
        cache.passes -= 1;
        if cache.passes == 0 {
            cache.texts = HashMap::new();
        }
    }
}

/// Where a connection's list of documents stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Listing {
    #[default]
    Idle,
    /// A pass is under way.
    Paging,
    /// A pass is under way, and another is wanted after it.
    PagingThenAgain,
}

impl Relay {
    /// Tells a connection which documents it may see, in pages (sent even
    /// when there are none: a client waits for the last page before it
    /// calls a sync complete). If a list is going out to it already,
    /// another follows that one.
    pub(crate) fn announce_documents(self: &Arc<Self>, conn: ConnId) {
        let key = {
            let mut conns = lock(&self.conns);
            let Some(handle) = conns.get_mut(&conn) else {
                return;
            };
            let Identity::Key(key) = handle.identity else {
                return;
            };
            match handle.listing {
                Listing::Idle => handle.listing = Listing::Paging,
                Listing::Paging | Listing::PagingThenAgain => {
                    handle.listing = Listing::PagingThenAgain;
                    return;
                }
            }
            key
        };
        let relay = Arc::clone(self);
        let span = debug_span!("documents", conn = conn.0);
        tokio::spawn(async move { relay.list_documents(conn, key).await }.instrument(span));
    }

    /// Sends passes of the list until none is wanted, or the connection
    /// has gone.
    async fn list_documents(&self, conn: ConnId, key: PublicKey) {
        let _pass = Pass::start(self);
        let mut after: Option<Cursor> = None;
        let mut pages = 0_u64;
        loop {
            let (documents, next) =
                lock(&self.workspaces).visible_page(&key, after.as_ref(), DOCUMENTS_PER_PAGE);
            let more = next.is_some();
            let Some((drain, ticket)) = self.send_page(conn, documents, more) else {
                return;
            };
            pages += 1;
            after = next;
            if !more {
                debug!(pages, "documents listed");
                pages = 0;
                if !self.list_again(conn) {
                    return;
                }
            }
            if !drain.written(ticket).await {
                return;
            }
        }
    }

    /// Queues one page; `None` if the connection has gone or its queue is
    /// full (then it is being closed).
    fn send_page(
        &self,
        conn: ConnId,
        documents: Vec<DocumentId>,
        more: bool,
    ) -> Option<(Drain, Ticket)> {
        let (remote, drain) = {
            let conns = lock(&self.conns);
            let handle = conns.get(&conn)?;
            (handle.remote.clone(), handle.tx.drain())
        };
        let frame = {
            let mut cache = lock(&self.id_texts);
            for id in &documents {
                cache
                    .texts
                    .entry(*id)
                    .or_insert_with(|| id.to_string().into());
            }
            let texts: Vec<&str> = documents
                .iter()
                .filter_map(|id| cache.texts.get(id).map(|text| &**text))
                .collect();
            Documents::encode_texts(&self.peer_id, &remote, &texts, more)
        };
        let ticket = self.send_frame(conn, frame.into())?;
        Some((drain, ticket))
    }

    /// At the end of a pass: whether another is wanted (and is then under
    /// way).
    fn list_again(&self, conn: ConnId) -> bool {
        let mut conns = lock(&self.conns);
        let Some(handle) = conns.get_mut(&conn) else {
            return false;
        };
        let again = handle.listing == Listing::PagingThenAgain;
        handle.listing = if again {
            Listing::Paging
        } else {
            Listing::Idle
        };
        again
    }
}
