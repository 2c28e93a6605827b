//! The automerge-repo WebSocket protocol "1": one CBOR map per binary frame.
//!
//! [`Message::decode`] reads what `@automerge/automerge-repo` 2.5 writes:
//! maps with any header width (cbor-x writes `b9 00 05` for five keys),
//! keys in any order, unknown keys skipped, `undefined` where a JS field is
//! unset, and integers as CBOR integers or floats. It never panics and never
//! allocates more than the input justifies: byte and text strings are
//! borrowed from the frame until the message is built, and every length is
//! checked against the bytes that remain.
//!
//! [`Message::encode`] writes minimal CBOR with the keys in the order the JS
//! packages use, `undefined` for an absent `storageId` as they do, and
//! integers above `u32::MAX` as float64 so that JS reads them as numbers.
//!
//! A frame whose `type` we do not know decodes to
//! [`DecodeError::UnknownType`]: callers log it and drop the frame
//! ([`DecodeError::is_droppable`]); it is never a reason to close a
//! connection. Our own extensions use the `rapport/` prefix, which JS peers
//! drop the same way.

mod decode;
mod encode;
mod error;

pub use error::DecodeError;

use crate::ids::{ChangeHash, DocumentId, PeerId, StorageId};

/// One WebSocket data frame as the transport hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A binary frame: the only kind the protocol uses.
    Binary(&'a [u8]),
    /// A text frame: always a protocol error.
    Text(&'a str),
}

impl Message {
    /// Reads a message from a WebSocket data frame; text frames are refused
    /// with [`DecodeError::TextFrame`].
    pub fn from_frame(frame: Frame<'_>) -> Result<Self, DecodeError> {
        match frame {
            Frame::Binary(bytes) => Self::decode(bytes),
            Frame::Text(_) => Err(DecodeError::TextFrame),
        }
    }
}

/// The only protocol version automerge-repo 2.x speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// One protocol message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// The initiating peer's hello (`join`).
    Join(Join),
    /// The receiving peer's answer to `join` (`peer`).
    Peer(Peer),
    /// A protocol error; the sender closes the connection after it.
    Error(ErrorMessage),
    /// The sender is about to disconnect.
    Leave(Leave),
    /// The sender wants a document and sends its first sync message.
    Request(DocMessage),
    /// One automerge sync message about a document.
    Sync(DocMessage),
    /// The sender does not have the document and knows nobody who does.
    DocUnavailable(DocUnavailable),
    /// Application data about a document that is not stored (presence, cursors).
    Ephemeral(Ephemeral),
    /// The sender changes which storage ids it wants remote heads of.
    RemoteSubscriptionChange(RemoteSubscriptionChange),
    /// Heads of a document at other storage ids the sender knows of.
    RemoteHeadsChanged(RemoteHeadsChanged),
    /// rapport's extension: changes the receiver sent were refused.
    Rejected(Rejected),
    /// rapport's extension: the documents the receiver may see.
    Documents(Documents),
    /// rapport's extension: documents that were deleted or erased; the
    /// receiver drops its copies.
    Removed(Documents),
}

/// `rapport/documents`: every document the receiver may see, sent by a
/// relay after the handshake and again whenever the list grows. A long
/// list comes in pages, each a `rapport/documents` of its own: every page
/// but the last has `more` set (`more: true` in the map; absent on the
/// last, so a receiver that knows nothing of pages takes each page as
/// documents it may see, which they are). The same fields make
/// `rapport/removed`: documents deleted or erased in the receiver's
/// workspaces, sent after the handshake and whenever one goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Documents {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    pub documents: Vec<DocumentId>,
    /// More pages of the same list follow this one.
    pub more: bool,
}

/// Metadata a peer sends about itself in `join` and `peer`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The peer's storage id, if it stores documents.
    pub storage_id: Option<StorageId>,
    /// True when the peer will not come back with the same storage.
    pub is_ephemeral: bool,
}

/// `join`: the first frame of the initiating peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    pub sender_id: PeerId,
    pub peer_metadata: Option<PeerMetadata>,
    pub supported_protocol_versions: Vec<String>,
}

/// `peer`: the receiving peer accepts a `join`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub sender_id: PeerId,
    pub peer_metadata: Option<PeerMetadata>,
    pub selected_protocol_version: String,
    pub target_id: PeerId,
}

/// `error`: what went wrong, in words; the connection closes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMessage {
    pub sender_id: Option<PeerId>,
    pub message: String,
    pub target_id: Option<PeerId>,
}

/// `leave`: the sender is going away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leave {
    pub sender_id: PeerId,
}

/// `request` and `sync`: an automerge sync message about one document.
#[derive(Clone, PartialEq, Eq)]
pub struct DocMessage {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    pub document_id: DocumentId,
    /// The bytes of an `automerge::sync::Message`.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for DocMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocMessage")
            .field("sender_id", &self.sender_id)
            .field("target_id", &self.target_id)
            .field("document_id", &self.document_id)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// `doc-unavailable`: the sender cannot provide the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocUnavailable {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    pub document_id: DocumentId,
}

/// `ephemeral`: data forwarded to the peers that have the document open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ephemeral {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    /// Increases with each message of one session; stale counts are dropped.
    pub count: u64,
    pub session_id: String,
    pub document_id: DocumentId,
    /// CBOR chosen by the application; relays forward it unchanged.
    pub data: Vec<u8>,
}

/// `remote-subscription-change`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSubscriptionChange {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    pub add: Option<Vec<StorageId>>,
    pub remove: Option<Vec<StorageId>>,
}

/// `remote-heads-changed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHeadsChanged {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    pub document_id: DocumentId,
    /// Per storage id, in the order the sender wrote them.
    pub new_heads: Vec<(StorageId, RemoteHeads)>,
}

/// The heads of a document at one storage id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHeads {
    /// Heads as the sender wrote them (bs58check in automerge-repo 2.x).
    pub heads: Vec<String>,
    /// Milliseconds since the unix epoch at the storage that has them.
    pub timestamp: u64,
}

/// `rapport/rejected`: changes the receiver sent were refused: not stored,
/// not forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub sender_id: PeerId,
    pub target_id: PeerId,
    pub document_id: DocumentId,
    /// The refused changes.
    pub changes: Vec<ChangeHash>,
    pub reason: RejectReason,
    /// A sentence for people.
    pub message: String,
}

/// Why changes were refused, as a stable code on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The change's actor is bound to another person's key.
    ActorOfAnotherKey,
    /// The sender may read this document but not change it.
    ReadOnly,
    /// On a comment thread the sender may add comments and change only
    /// their own; the change did more.
    CommentsOnly,
    /// The relay cannot store changes right now (disk full, write failed).
    StorageUnavailable,
    /// The change bytes are not a valid automerge change.
    InvalidChange,
    /// The sender holds as many documents outside every workspace as the
    /// relay allows; a new one is refused until one is put in a workspace.
    QuotaExceeded,
    /// The document's workspace holds as many bytes as the relay allows.
    WorkspaceFull,
    /// A code this version does not know, kept as sent.
    Unrecognized(String),
}

impl RejectReason {
    /// The code written on the wire.
    pub fn code(&self) -> &str {
        match self {
            Self::ActorOfAnotherKey => "actor-of-another-key",
            Self::ReadOnly => "read-only",
            Self::CommentsOnly => "comments-only",
            Self::StorageUnavailable => "storage-unavailable",
            Self::InvalidChange => "invalid-change",
            Self::QuotaExceeded => "quota-exceeded",
            Self::WorkspaceFull => "workspace-full",
            Self::Unrecognized(code) => code,
        }
    }

    /// Whether the same changes may be accepted later: the relay's storage
    /// failed, not the changes.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::StorageUnavailable)
    }

    /// The reason a code names.
    pub fn from_code(code: &str) -> Self {
        match code {
            "actor-of-another-key" => Self::ActorOfAnotherKey,
            "read-only" => Self::ReadOnly,
            "comments-only" => Self::CommentsOnly,
            "storage-unavailable" => Self::StorageUnavailable,
            "invalid-change" => Self::InvalidChange,
            "quota-exceeded" => Self::QuotaExceeded,
            "workspace-full" => Self::WorkspaceFull,
            other => Self::Unrecognized(other.to_owned()),
        }
    }
}

impl Message {
    /// The `type` string of the message on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Join(_) => "join",
            Self::Peer(_) => "peer",
            Self::Error(_) => "error",
            Self::Leave(_) => "leave",
            Self::Request(_) => "request",
            Self::Sync(_) => "sync",
            Self::DocUnavailable(_) => "doc-unavailable",
            Self::Ephemeral(_) => "ephemeral",
            Self::RemoteSubscriptionChange(_) => "remote-subscription-change",
            Self::RemoteHeadsChanged(_) => "remote-heads-changed",
            Self::Rejected(_) => "rapport/rejected",
            Self::Documents(_) => "rapport/documents",
            Self::Removed(_) => "rapport/removed",
        }
    }

    /// The peer that sent the message, where the message names one.
    pub fn sender_id(&self) -> Option<&PeerId> {
        match self {
            Self::Join(m) => Some(&m.sender_id),
            Self::Peer(m) => Some(&m.sender_id),
            Self::Error(m) => m.sender_id.as_ref(),
            Self::Leave(m) => Some(&m.sender_id),
            Self::Request(m) | Self::Sync(m) => Some(&m.sender_id),
            Self::DocUnavailable(m) => Some(&m.sender_id),
            Self::Ephemeral(m) => Some(&m.sender_id),
            Self::RemoteSubscriptionChange(m) => Some(&m.sender_id),
            Self::RemoteHeadsChanged(m) => Some(&m.sender_id),
            Self::Rejected(m) => Some(&m.sender_id),
            Self::Documents(m) | Self::Removed(m) => Some(&m.sender_id),
        }
    }

    /// The document the message is about, where it is about one.
    pub fn document_id(&self) -> Option<DocumentId> {
        match self {
            Self::Request(m) | Self::Sync(m) => Some(m.document_id),
            Self::DocUnavailable(m) => Some(m.document_id),
            Self::Ephemeral(m) => Some(m.document_id),
            Self::RemoteHeadsChanged(m) => Some(m.document_id),
            Self::Rejected(m) => Some(m.document_id),
            Self::Join(_)
            | Self::Documents(_)
            | Self::Removed(_)
            | Self::Peer(_)
            | Self::Error(_)
            | Self::Leave(_)
            | Self::RemoteSubscriptionChange(_) => None,
        }
    }
}
