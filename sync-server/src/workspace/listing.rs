//! The documents a key may see, a page at a time: the pages of
//! `rapport/documents`. The order is stable (by workspace id, then by
//! document id), so a page starts where the one before ended even when the
//! workspaces changed in between. A document listed meanwhile before that
//! point is told of by the announcement its listing makes; one removed is
//! told of by `rapport/removed`.

use std::ops::Bound;

use rapport_protocol::ids::{DocumentId, PublicKey};

use super::Workspaces;
use crate::access::Access;

/// Where the next page of a list starts: after `document` of `workspace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    workspace: String,
    document: DocumentId,
}

impl Workspaces {
    /// Up to `limit` documents `key` may see, from `after` on (from the
    /// start without it), and where the next page starts if any is left.
    pub(crate) fn visible_page(
        &self,
        key: &PublicKey,
        after: Option<&Cursor>,
        limit: usize,
    ) -> (Vec<DocumentId>, Option<Cursor>) {
        let first = after.map_or(Bound::Unbounded, |c| Bound::Included(c.workspace.as_str()));
        let mut visible = self
            .by_id
            .range::<str, _>((first, Bound::Unbounded))
            .flat_map(|(id, workspace)| {
                let start = match after {
                    Some(c) if c.workspace == *id => Bound::Excluded(c.document),
                    _ => Bound::Unbounded,
                };
                workspace
                    .documents
                    .range((start, Bound::Unbounded))
                    .map(|(doc, _)| *doc)
                    .filter(move |doc| workspace.access(key, *doc) != Access::None)
                    .map(move |doc| (id, doc))
            });
        let page: Vec<(&String, DocumentId)> = visible.by_ref().take(limit.max(1)).collect();
        let next = match (page.last(), visible.next()) {
            (Some((workspace, document)), Some(_)) => Some(Cursor {
                workspace: (*workspace).clone(),
                document: *document,
            }),
            _ => None,
        };
        (page.into_iter().map(|(_, doc)| doc).collect(), next)
    }
}
