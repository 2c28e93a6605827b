//! The body and id of a message of the changes stream (docs/cluster.md,
//! section 2, "One message"). A decoder never panics: a message no relay
//! of ours wrote is `None`.

use std::sync::Arc;

use automerge::ChangeHash;
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::relay::StoredChange;
use sha2::{Digest as _, Sha256};

use crate::storage::codec;

/// The same changes of one document published twice (a retry after a
/// lost acknowledgement) are one message to JetStream.
pub(super) fn message_id(document: DocumentId, changes: &[StoredChange]) -> String {
    let mut hash = Sha256::new();
    hash.update(document.as_bytes());
    for change in changes {
        hash.update(change.hash.0);
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("c-{hex}")
}

/// The first byte of a message's body: changes one by one, or a saved
/// document (a first upload, kept whole by every relay as it is by the
/// one that took it).
const CHANGES: u8 = 1;
pub(super) const WHOLE: u8 = 2;

/// What one change takes in a body: its length, then its row.
pub(super) fn row_size(change: &StoredChange) -> usize {
    4 + codec::encoded_len(change)
}

/// A message's body: byte 1, a u32 LE count, then per change a u32 LE
/// length and the row `storage::codec` writes.
pub(super) fn encode(changes: &[StoredChange]) -> Vec<u8> {
    let mut out = vec![CHANGES];
    out.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for change in changes {
        let row = codec::encode(change);
        out.extend_from_slice(&(row.len() as u32).to_le_bytes());
        out.extend_from_slice(&row);
    }
    out
}

/// A message's changes, and the saved document they came in if it came
/// whole.
pub(super) fn decode(body: &[u8]) -> Option<Taken> {
    let (&kind, rest) = body.split_first()?;
    match kind {
        CHANGES => Some(Taken {
            changes: decode_changes(rest)?,
            whole: None,
            author: None,
            covers: None,
        }),
        // Split into its changes only when they are needed (`Taken::split`):
        // a relay that holds a snapshot's heads passes it over unread.
        WHOLE => Some(Taken {
            changes: Vec::new(),
            whole: Some(Arc::from(rest)),
            author: None,
            covers: None,
        }),
        _ => None,
    }
}

/// Changes another relay accepted, as one message carried them.
#[derive(Debug, PartialEq)]
pub(crate) struct Taken {
    pub(crate) changes: Vec<StoredChange>,
    /// The saved document they came in, if they came whole.
    pub(crate) whole: Option<Arc<[u8]>>,
    /// The key that wrote them, if a key did.
    pub(crate) author: Option<PublicKey>,
    /// For a compaction's snapshot, its heads: a relay that holds them
    /// holds every change in it.
    pub(crate) covers: Option<Vec<ChangeHash>>,
}

impl Taken {
    /// Fills `changes` from the saved document they came in, if they came
    /// whole; false if it does not parse.
    pub(crate) fn split(&mut self) -> bool {
        match &self.whole {
            Some(whole) if self.changes.is_empty() => {
                match rapport_protocol::relay::split_changes([&whole[..]].into_iter()) {
                    Ok(changes) => {
                        self.changes = changes;
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => true,
        }
    }
}

/// A snapshot's heads as its header carries them: hex, comma-separated.
pub(super) fn heads_header(heads: &[ChangeHash]) -> String {
    heads
        .iter()
        .map(|h| h.0.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(",")
}

/// The heads a snapshot's header names; `None` if it does not parse.
pub(super) fn parse_heads(header: &str) -> Option<Vec<ChangeHash>> {
    header
        .split(',')
        .map(|hex| {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            Some(ChangeHash(bytes.try_into().ok()?))
        })
        .collect()
}

fn decode_changes(mut rest: &[u8]) -> Option<Vec<StoredChange>> {
    let count = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest = &rest[4..];
    let mut changes = Vec::with_capacity(count.min(rest.len() / 40));
    for _ in 0..count {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let row = rest.get(4..4 + len)?;
        changes.push(codec::decode(row)?);
        rest = &rest[4 + len..];
    }
    rest.is_empty().then_some(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_through_their_header() {
        let heads = vec![ChangeHash([1; 32]), ChangeHash([0xab; 32])];
        assert_eq!(parse_heads(&heads_header(&heads)), Some(heads));
        assert_eq!(parse_heads("zz"), None);
        assert_eq!(parse_heads("abc"), None);
    }

    fn change(n: u8) -> StoredChange {
        StoredChange {
            hash: ChangeHash([n; 32]),
            deps: vec![ChangeHash([n.wrapping_sub(1); 32])],
            actor: vec![n; 16],
            bytes: Arc::from(vec![n; 20]),
        }
    }

    #[test]
    fn a_message_body_round_trips_and_garbage_is_none() {
        let changes = vec![change(1), change(2)];
        let body = encode(&changes);
        assert_eq!(
            decode(&body),
            Some(Taken {
                changes,
                whole: None,
                author: None,
                covers: None,
            })
        );
        assert_eq!(decode(&body[..body.len() - 1]), None);
        assert!(!decode(&[2, 0, 0, 0, 0]).is_some_and(|mut t| t.split()));
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[1, 255, 255, 255, 255]), None);
    }
}
