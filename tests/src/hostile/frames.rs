//! Frames to throw at the relay: random text and bytes, well-formed
//! messages of every type, messages of types it does not know, and damage
//! done to any of them. All drawn from the caller's RNG, so that a seed
//! replays a run.

use rand::Rng;
use rapport_protocol::ids::{DocumentId, StorageId};
use rapport_protocol::wire::{
    DocMessage, DocUnavailable, Documents, Ephemeral, ErrorMessage, Join, Leave, Message, Peer,
    PeerMetadata, RejectReason, Rejected, RemoteHeads, RemoteHeadsChanged,
    RemoteSubscriptionChange,
};

use super::{GOOD, peer_id};

/// A fresh random document id.
pub fn random_doc(rng: &mut impl Rng) -> DocumentId {
    DocumentId::random(rng)
}

/// Up to `max` characters, mostly printable ASCII, some beyond.
pub fn random_string(rng: &mut impl Rng, max: usize) -> String {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0 => char::from_u32(rng.random_range(0x80..0x3000)).unwrap_or('?'),
            _ => rng.random_range(b' '..=b'~') as char,
        })
        .collect()
}

/// Up to `max` random bytes.
pub fn random_bytes(rng: &mut impl Rng, max: usize) -> Vec<u8> {
    let mut bytes = vec![0; rng.random_range(0..=max)];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// An automerge sync message that has nothing to say.
fn empty_sync_data() -> Vec<u8> {
    automerge::sync::Message {
        heads: vec![],
        need: vec![],
        have: vec![automerge::sync::Have::default()],
        changes: automerge::sync::ChunkList::empty(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode()
}

/// The `join` a well-behaved peer `me` opens with.
pub fn join(me: &str) -> Message {
    Message::Join(Join {
        sender_id: peer_id(me),
        peer_metadata: Some(PeerMetadata::default()),
        supported_protocol_versions: vec!["1".into()],
    })
}

/// A `request` for `doc` from `me` to the relay, with nothing in it yet.
pub fn request(me: &str, doc: DocumentId) -> Message {
    Message::Request(DocMessage {
        sender_id: peer_id(me),
        target_id: peer_id("relay"),
        document_id: doc,
        data: empty_sync_data(),
    })
}

/// CBOR `{"type": <t>, "senderId": <me>, …random text fields}`: a message
/// type this relay does not know.
pub fn unknown_type(rng: &mut impl Rng, me: &str) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        let len = s.len();
        if len < 24 {
            out.push(0x60 | len as u8);
        } else {
            out.push(0x79);
            out.extend((len as u16).to_be_bytes());
        }
        out.extend(s.as_bytes());
    }
    let extra = rng.random_range(0..4usize);
    let mut out = vec![0xa2 + extra as u8];
    text(&mut out, "type");
    let kind = match rng.random_range(0..3) {
        0 => format!("rapport/x-{}", rng.random_range(0..1000)),
        1 => "presence-v9".to_owned(),
        _ => format!("x{}", random_string(rng, 40).replace(['"', '\\'], "")),
    };
    // Never a type this relay knows.
    let kind = if KNOWN_TYPES.contains(&kind.as_str()) {
        "unknown".to_owned()
    } else {
        kind
    };
    text(&mut out, &kind);
    text(&mut out, "senderId");
    text(&mut out, me);
    for i in 0..extra {
        text(&mut out, &format!("field{i}"));
        text(&mut out, &random_string(rng, 30));
    }
    out
}

const KNOWN_TYPES: [&str; 12] = [
    "join",
    "peer",
    "error",
    "leave",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "remote-subscription-change",
    "remote-heads-changed",
    "rapport/rejected",
    "rapport/documents",
];

/// One well-formed message of any type, with `sender` as its sender.
pub fn any_message(rng: &mut impl Rng, sender: &str, captured: &[Message]) -> Message {
    let sender = peer_id(sender);
    let target = peer_id("relay");
    let doc = if rng.random_bool(0.3) {
        GOOD
    } else {
        random_doc(rng)
    };
    match rng.random_range(0..12) {
        0 => Message::Join(Join {
            sender_id: sender,
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(storage_id(&random_string(rng, 12))),
                is_ephemeral: rng.random(),
            }),
            supported_protocol_versions: vec![random_string(rng, 3)],
        }),
        1 => Message::Peer(Peer {
            sender_id: sender,
            peer_metadata: None,
            selected_protocol_version: "1".into(),
            target_id: target,
        }),
        2 => Message::Error(ErrorMessage {
            sender_id: Some(sender),
            message: random_string(rng, 50),
            target_id: None,
        }),
        3 => Message::Leave(Leave { sender_id: sender }),
        4 => Message::Request(DocMessage {
            sender_id: sender,
            target_id: target,
            document_id: doc,
            data: empty_sync_data(),
        }),
        5 => match captured.get(rng.random_range(0..captured.len().max(1))) {
            Some(Message::Sync(m)) => Message::Sync(DocMessage {
                sender_id: sender,
                target_id: target,
                document_id: m.document_id,
                data: m.data.clone(),
            }),
            _ => Message::Sync(DocMessage {
                sender_id: sender,
                target_id: target,
                document_id: doc,
                data: random_bytes(rng, 64),
            }),
        },
        6 => Message::DocUnavailable(DocUnavailable {
            sender_id: sender,
            target_id: target,
            document_id: doc,
        }),
        7 => Message::Ephemeral(Ephemeral {
            sender_id: sender,
            target_id: target,
            count: rng.random(),
            session_id: random_string(rng, 20),
            document_id: doc,
            data: vec![0xa1, 0x61, b'x', 0x01],
        }),
        8 => Message::RemoteSubscriptionChange(RemoteSubscriptionChange {
            sender_id: sender,
            target_id: target,
            add: Some(vec![storage_id("storage-x")]),
            remove: None,
        }),
        9 => Message::RemoteHeadsChanged(RemoteHeadsChanged {
            sender_id: sender,
            target_id: target,
            document_id: doc,
            new_heads: vec![(
                storage_id("storage-y"),
                RemoteHeads {
                    heads: vec![random_string(rng, 44)],
                    timestamp: rng.random(),
                },
            )],
        }),
        10 => Message::Rejected(Rejected {
            sender_id: sender,
            target_id: target,
            document_id: doc,
            changes: vec![],
            reason: RejectReason::ReadOnly,
            message: random_string(rng, 40),
        }),
        _ => Message::Documents(Documents {
            sender_id: sender,
            target_id: target,
            documents: vec![doc],
            more: rng.random(),
        }),
    }
}

/// A storage id from any text (they are opaque strings).
fn storage_id(text: &str) -> StorageId {
    let text = if text.is_empty() { "s" } else { text };
    text.parse().expect("a non-empty storage id")
}

/// Damages an encoded frame: truncates, flips, inserts, or repeats.
pub fn mutate(rng: &mut impl Rng, mut frame: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..4) {
        if frame.is_empty() {
            frame.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..frame.len());
        match rng.random_range(0..5) {
            0 => frame.truncate(at),
            1 => frame[at] ^= 1 << rng.random_range(0..8),
            2 => frame[at] = rng.random(),
            3 => {
                let junk = random_bytes(rng, 8);
                frame.splice(at..at, junk);
            }
            _ => {
                let tail = frame[at..].to_vec();
                frame.extend(tail);
            }
        }
    }
    frame
}
