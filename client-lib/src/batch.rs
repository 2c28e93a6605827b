//! What a sync connection read while its replica was busy, taken as one
//! batch: every frame already waiting on the socket is read at once, and
//! the `sync` messages among them about one document are received as one
//! (`rapport_protocol::sync::merge`), so that a replica behind on a long,
//! busy document pays automerge's receive once per batch rather than once
//! per message.

use std::collections::BTreeMap;

use futures_util::{FutureExt, StreamExt};
use rapport_protocol::ids::{DocumentId, PeerId};
use rapport_protocol::sync::merge::merge;
use rapport_protocol::wire::{DocMessage, Message};
use tokio_tungstenite::tungstenite;

use crate::transport::Socket;

/// Most frames read into one batch.
pub(crate) const MAX_FRAMES: usize = 512;

/// Frames read from a socket without waiting.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    /// The binary frames, in order.
    pub(crate) frames: Vec<tungstenite::Bytes>,
    /// A ping came: its pong waits for a flush.
    pub(crate) pinged: bool,
    /// The connection ended after these frames: why.
    pub(crate) ended: Option<String>,
}

/// `first`, and every frame already waiting on `socket` after it (up to
/// [`MAX_FRAMES`]).
pub(crate) fn read_ready(socket: &mut Socket, first: tungstenite::Bytes) -> Ready {
    let mut ready = Ready {
        frames: vec![first],
        ..Ready::default()
    };
    while ready.frames.len() < MAX_FRAMES {
        match socket.next().now_or_never() {
            None => break,
            Some(None) => {
                ready.ended = Some("the relay closed the connection".into());
                break;
            }
            Some(Some(Err(e))) => {
                ready.ended = Some(e.to_string());
                break;
            }
            Some(Some(Ok(tungstenite::Message::Binary(bytes)))) => ready.frames.push(bytes),
            Some(Some(Ok(tungstenite::Message::Close(frame)))) => {
                ready.ended = Some(frame.map(|f| f.reason.to_string()).unwrap_or_default());
                break;
            }
            Some(Some(Ok(_))) => ready.pinged = true,
        }
    }
    ready
}

/// `messages` with each run of `sync` messages (between other messages)
/// folded per sender and document: the messages of one document keep their
/// order, and messages of different documents, which do not depend on each
/// other, may arrive in another.
pub(crate) fn coalesce(messages: Vec<Message>) -> Vec<Message> {
    let mut out = Vec::with_capacity(messages.len());
    let mut run: BTreeMap<(PeerId, DocumentId), (usize, Vec<DocMessage>)> = BTreeMap::new();
    let flush = |run: &mut BTreeMap<(PeerId, DocumentId), (usize, Vec<DocMessage>)>,
                 out: &mut Vec<Message>| {
        let mut groups: Vec<(usize, Vec<DocMessage>)> = std::mem::take(run).into_values().collect();
        groups.sort_by_key(|(first, _)| *first);
        for (_, group) in groups {
            out.extend(merge(group).into_iter().map(Message::Sync));
        }
    };
    for (at, message) in messages.into_iter().enumerate() {
        match message {
            Message::Sync(m) => {
                run.entry((m.sender_id.clone(), m.document_id))
                    .or_insert_with(|| (at, Vec::new()))
                    .1
                    .push(m);
            }
            other => {
                flush(&mut run, &mut out);
                out.push(other);
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, Automerge, ROOT};
    use rapport_protocol::wire::Documents;

    use super::*;

    fn sync(doc: u8, change: &automerge::Change) -> Message {
        let data = automerge::sync::Message {
            heads: vec![change.hash()],
            need: Vec::new(),
            have: Vec::new(),
            changes: automerge::sync::ChunkList::from(vec![change.raw_bytes().to_vec()]),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        Message::Sync(DocMessage {
            sender_id: "relay".parse().unwrap(),
            target_id: "me".parse().unwrap(),
            document_id: DocumentId::from_bytes([doc; 16]),
            data: data.encode(),
        })
    }

    #[test]
    fn sync_messages_fold_per_document_between_other_messages() {
        let mut doc = Automerge::new().with_actor(ActorId::from(vec![1; 16]));
        let mut changes = Vec::new();
        for n in 0..4 {
            let before = doc.get_heads();
            let mut tx = doc.transaction();
            tx.put(ROOT, "n", n).unwrap();
            tx.commit();
            changes.extend(doc.get_changes(&before));
        }
        let listed = Message::Documents(Documents {
            sender_id: "relay".parse().unwrap(),
            target_id: "me".parse().unwrap(),
            documents: Vec::new(),
            more: false,
        });
        let messages = vec![
            sync(1, &changes[0]),
            sync(2, &changes[0]),
            sync(1, &changes[1]),
            listed.clone(),
            sync(1, &changes[2]),
            sync(1, &changes[3]),
        ];
        let folded = coalesce(messages);
        let shape: Vec<String> = folded
            .iter()
            .map(|m| match m {
                Message::Sync(s) => {
                    let n = automerge::sync::Message::decode(&s.data)
                        .unwrap()
                        .changes
                        .len();
                    format!("{}:{n}", s.document_id.as_bytes()[0])
                }
                _ => "documents".into(),
            })
            .collect();
        assert_eq!(shape, ["1:2", "2:1", "documents", "1:2"]);
    }
}
