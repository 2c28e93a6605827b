//! Sync messages that queued up while a replica was busy, received as one.
//!
//! automerge's receive of a sync message costs time that grows with the
//! document's history (on a long one, tens of milliseconds each), so a
//! replica that takes a busy document's messages one at a time falls
//! further behind the longer people type. A sync message describes its
//! sender's state when it was sent (heads, needs, bloom filter of what it
//! has) and carries changes; of several from one sender the last describes
//! the latest state, and the changes of all of them loaded together are
//! what loading them one after another gives. So the merged message is the
//! last one carrying every message's changes, in order.

use automerge::sync::{ChunkList, Message, MessageVersion, ReadMessageError};

use crate::wire::DocMessage;

/// Folds consecutive `sync` messages of `messages` that come from the same
/// sender about the same document into one ([`merge`]), keeping the order
/// of everything else. A message whose data does not decode is left as it
/// is, for its receiver to refuse.
pub fn merge_runs(messages: Vec<DocMessage>) -> Vec<DocMessage> {
    let mut out: Vec<DocMessage> = Vec::with_capacity(messages.len());
    let mut run: Vec<DocMessage> = Vec::new();
    for message in messages {
        let continues = run.last().is_some_and(|last| {
            last.sender_id == message.sender_id && last.document_id == message.document_id
        });
        if !continues {
            out.extend(merge(std::mem::take(&mut run)));
        }
        run.push(message);
    }
    out.extend(merge(run));
    out
}

/// One sync message for `messages` (from one sender, about one document,
/// oldest first): the last one, carrying all their changes. Returns them
/// unmerged if any does not decode.
pub fn merge(mut messages: Vec<DocMessage>) -> Vec<DocMessage> {
    if messages.len() < 2 {
        return messages;
    }
    match merged(&messages) {
        Ok(data) => {
            let mut last = messages.pop().expect("at least two messages");
            last.data = data;
            vec![last]
        }
        Err(_) => messages,
    }
}

fn merged(messages: &[DocMessage]) -> Result<Vec<u8>, ReadMessageError> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut last = None;
    for message in messages {
        let decoded = Message::decode(&message.data)?;
        chunks.extend(decoded.changes.iter().map(<[u8]>::to_vec));
        last = Some(decoded);
    }
    let mut last = last.expect("at least two messages");
    last.changes = ChunkList::from(chunks);
    // Version 1 carries a list of changes as they are; the flags of a
    // later version only tell what the sender can read.
    last.version = MessageVersion::V1;
    last.flags = None;
    Ok(last.encode())
}
