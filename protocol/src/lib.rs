//! rapport's sans-IO core.
//!
//! Everything here is pure: bytes, ids and events go in, messages and
//! effects come out. There is no async runtime, no socket, no database, no
//! clock and no operating-system randomness in this crate (a test fails if
//! one enters its dependency tree); callers pass `now` and an RNG.
//!
//! - [`ids`]: typed identifiers with round-tripping text forms:
//!   [`DocumentId`](ids::DocumentId) (bs58check), [`AutomergeUrl`](ids::AutomergeUrl),
//!   [`PeerId`](ids::PeerId), [`PublicKey`](ids::PublicKey) (base58),
//!   [`ChangeHash`](ids::ChangeHash).
//! - [`wire`]: the automerge-repo WebSocket protocol "1", byte-compatible
//!   with `@automerge/automerge-repo` 2.5, plus rapport's `rapport/`
//!   extension messages.
//! - [`token`]: the EdDSA JWT a peer presents when it connects, and its
//!   verification with a bounded replay cache.
//! - [`sync`]: the handshake and the per-document sync state machine around
//!   `automerge::sync`, as events in and effects out.
//!
//! # Example
//!
//! Two peers sync a document with nothing but the state machines; the
//! messages pass through the wire encoding as they would over a socket.
//!
//! ```
//! use automerge::{transaction::Transactable, Automerge, ReadDoc, ROOT};
//! use rapport_protocol::ids::{DocumentId, PeerId, UnixMillis};
//! use rapport_protocol::sync::{DocumentSync, Effect};
//! use rapport_protocol::wire::Message;
//!
//! let id = DocumentId::from_bytes([1; 16]);
//! let (alice, bob): (PeerId, PeerId) = ("alice".parse()?, "bob".parse()?);
//! let now = UnixMillis(1_700_000_000_000);
//!
//! let mut doc = Automerge::new();
//! doc.transact(|tx| tx.put(ROOT, "customer", "Acme"))
//!     .map_err(|failure| failure.error)?;
//! let mut a = DocumentSync::new(id, alice.clone(), doc);
//! let mut b = DocumentSync::new(id, bob.clone(), Automerge::new());
//! a.handle_peer_connected(bob, now);
//! b.handle_peer_connected(alice, now);
//!
//! /// Carries `from`'s frames to `to`; false when there were none.
//! fn deliver(from: &mut DocumentSync, to: &mut DocumentSync, now: UnixMillis)
//!     -> Result<bool, Box<dyn std::error::Error>> {
//!     let mut sent = false;
//!     while let Some(effect) = from.poll_effect() {
//!         let Effect::Send(message) = effect else { continue };
//!         sent = true;
//!         match Message::decode(&message.encode())? {
//!             Message::Sync(m) => to.handle_sync(&m, now)?,
//!             Message::Request(m) => to.handle_request(&m, now)?,
//!             Message::DocUnavailable(m) => to.handle_unavailable(&m),
//!             other => unreachable!("a document sync sends no {other:?}"),
//!         }
//!     }
//!     Ok(sent)
//! }
//! while deliver(&mut a, &mut b, now)? | deliver(&mut b, &mut a, now)? {}
//! assert_eq!(a.heads(), b.heads());
//! let (customer, _) = b.doc().get(ROOT, "customer")?.expect("synced");
//! assert_eq!(customer.as_str(), Some("Acme"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ids;
pub mod relay;
pub mod sync;
pub mod token;
pub mod wire;
