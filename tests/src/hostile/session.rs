//! One attacking connection: the frames it sends next, and what the relay
//! must do with each ([`Class`]), given what the connection did before
//! (joined or not, documents opened up to the relay's limit).

use std::collections::BTreeSet;

use rand::Rng;
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::{DocMessage, Ephemeral, ErrorMessage, Leave, Message, Peer};
use tokio_tungstenite::tungstenite;

use super::frames::{
    any_message, join, mutate, random_bytes, random_doc, random_string, request, unknown_type,
};
use super::{GOOD, MAX_DOCS, MAX_FRAME, peer_id};

/// What the relay must do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Dropped or handled; the connection keeps serving.
    Harmless,
    /// Anything but silence: handled, or the connection closes.
    Unknown,
    /// The connection must close.
    Fatal,
}

/// The state of one attacking connection.
#[derive(Debug)]
pub struct Session<'a, R> {
    pub rng: &'a mut R,
    /// Frames the relay sent the good peers, to replay at it.
    captured: &'a [Message],
    me: String,
    pub joined: bool,
    /// Documents this connection opened (the relay allows [`MAX_DOCS`]).
    opened: BTreeSet<DocumentId>,
    /// Only frames the relay must take without closing.
    pub harmless_only: bool,
    /// What was sent, for a failure's message.
    pub sent: Vec<String>,
}

/// Whether opening `doc` would leave no room under the relay's limit for
/// the probe at the end of a harmless run.
fn full_without(opened: &BTreeSet<DocumentId>, doc: DocumentId) -> bool {
    opened.len() + 1 >= MAX_DOCS && !opened.contains(&doc)
}

/// The rolls of [`Session::next_frame`] that can be harmless.
fn harmless_roll(roll: u32) -> bool {
    matches!(roll, 0..=19 | 60..=76 | 80..=89)
}

impl<'a, R: Rng> Session<'a, R> {
    /// A connection that sends as `me`, not joined yet, drawing from `rng`
    /// and replaying from `captured`.
    pub fn new(rng: &'a mut R, captured: &'a [Message], me: String) -> Self {
        Self {
            rng,
            captured,
            me,
            joined: false,
            opened: BTreeSet::new(),
            harmless_only: false,
            sent: Vec::new(),
        }
    }

    /// The next frame to send, and what the relay must do with it.
    pub fn next_frame(&mut self) -> (tungstenite::Message, Class) {
        use tungstenite::Message as Ws;
        let binary = |bytes: Vec<u8>| Ws::binary(bytes);
        let me = self.me.clone();
        let rng = &mut *self.rng;
        let roll = loop {
            let roll = rng.random_range(0..100);
            if !self.harmless_only || harmless_roll(roll) {
                break roll;
            }
        };
        self.sent.push(format!("roll {roll}"));
        match roll {
            // Unknown message types, with any senderId: always dropped.
            0..=14 => {
                let sender = if rng.random_bool(0.8) {
                    me
                } else {
                    random_string(rng, 10)
                };
                (binary(unknown_type(rng, &sender)), Class::Harmless)
            }
            15..=19 => (
                if rng.random() {
                    Ws::Ping(random_bytes(rng, 100).into())
                } else {
                    Ws::Pong(random_bytes(rng, 100).into())
                },
                Class::Harmless,
            ),
            // Random bytes.
            20..=29 => (binary(random_bytes(rng, 600)), Class::Unknown),
            // A well-formed message, then damaged.
            30..=44 => {
                let message = any_message(rng, &me, self.captured);
                (binary(mutate(rng, message.encode())), Class::Unknown)
            }
            // A text frame.
            45..=47 => (Ws::text(random_string(rng, 100)), Class::Fatal),
            // Oversize.
            48..=50 => {
                let mut big = vec![0u8; MAX_FRAME + rng.random_range(1..MAX_FRAME)];
                rng.fill_bytes(&mut big);
                (binary(big), Class::Fatal)
            }
            // A well-formed message of a known type under someone else's
            // senderId.
            51..=55 => {
                let other = format!("{me}-not");
                let message = any_message(rng, &other, self.captured);
                let class = if !self.joined {
                    match message {
                        // Its versions may include "1": then it joins.
                        Message::Join(_) => Class::Unknown,
                        _ => Class::Fatal,
                    }
                } else if matches!(message, Message::Ephemeral(_)) {
                    // What stock peers do with the presence of others they
                    // pass on: dropped, unless it is malformed (a random
                    // count past 2^53 does not decode), which closes.
                    Class::Unknown
                } else {
                    // Every other type's senderId is checked, even ignored
                    // ones.
                    Class::Fatal
                };
                (binary(message.encode()), class)
            }
            // A replayed frame the relay sent a good peer, unchanged: its
            // senderId is the relay's.
            56..=59 if !self.captured.is_empty() => {
                let i = rng.random_range(0..self.captured.len());
                let message = self.captured[i].clone();
                let class = match message {
                    Message::Ephemeral(_) if self.joined => Class::Harmless,
                    _ => Class::Fatal,
                };
                (binary(message.encode()), class)
            }
            // Replayed sync data of the good document as our own.
            60..=66 if !self.captured.is_empty() => {
                let i = rng.random_range(0..self.captured.len());
                let Message::Sync(m) = &self.captured[i] else {
                    return (binary(unknown_type(rng, &me)), Class::Harmless);
                };
                if self.harmless_only && full_without(&self.opened, m.document_id) {
                    return (binary(unknown_type(rng, &me)), Class::Harmless);
                }
                let message = Message::Sync(DocMessage {
                    sender_id: peer_id(&me),
                    target_id: m.sender_id.clone(),
                    document_id: m.document_id,
                    data: m.data.clone(),
                });
                let class = self.open(m.document_id);
                (binary(message.encode()), class)
            }
            // A request: for the good document or a new one.
            67..=76 => {
                let mut doc = if rng.random_bool(0.2) {
                    GOOD
                } else {
                    random_doc(rng)
                };
                if self.harmless_only && full_without(&self.opened, doc) {
                    doc = *self.opened.iter().next().expect("full, so not empty");
                }
                let class = self.open(doc);
                (binary(request(&me, doc).encode()), class)
            }
            // Sync data that is not an automerge sync message.
            77..=79 => {
                let message = Message::Sync(DocMessage {
                    sender_id: peer_id(&me),
                    target_id: peer_id("relay"),
                    document_id: if rng.random() { GOOD } else { random_doc(rng) },
                    data: random_bytes(rng, 80),
                });
                (binary(message.encode()), Class::Unknown)
            }
            // Ephemeral messages, every one a new session.
            80..=89 => {
                let message = Message::Ephemeral(Ephemeral {
                    sender_id: peer_id(&me),
                    target_id: peer_id("relay"),
                    count: rng.random_range(0..5),
                    session_id: format!("s{}", rng.random::<u32>()),
                    document_id: if rng.random() { GOOD } else { random_doc(rng) },
                    data: vec![0xa1, 0x61, b'c', 0x01],
                });
                let class = if self.joined {
                    Class::Harmless
                } else {
                    Class::Fatal
                };
                (binary(message.encode()), class)
            }
            // Wrong order: a second `join`, a `peer`, `leave` or `error`.
            _ => {
                let first_join = !self.joined;
                let message = match rng.random_range(0..4) {
                    0 => join(&me),
                    1 => Message::Peer(Peer {
                        sender_id: peer_id(&me),
                        peer_metadata: None,
                        selected_protocol_version: "1".into(),
                        target_id: peer_id("relay"),
                    }),
                    2 => Message::Leave(Leave {
                        sender_id: peer_id(&me),
                    }),
                    _ => Message::Error(ErrorMessage {
                        sender_id: Some(peer_id(&me)),
                        message: "hostile".into(),
                        target_id: None,
                    }),
                };
                if first_join && matches!(message, Message::Join(_)) {
                    // A first `join` is the right order after all.
                    self.joined = true;
                    return (binary(message.encode()), Class::Harmless);
                }
                (binary(message.encode()), Class::Fatal)
            }
        }
    }

    /// Opens `doc`: harmless up to the relay's limit, fatal beyond it, and
    /// fatal before `join`.
    pub fn open(&mut self, doc: DocumentId) -> Class {
        if !self.joined {
            return Class::Fatal;
        }
        if !self.opened.contains(&doc) && self.opened.len() >= MAX_DOCS {
            return Class::Fatal;
        }
        self.opened.insert(doc);
        Class::Harmless
    }
}
