use crate::ids::IdError;

/// Why a frame is not a protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A text WebSocket frame: the protocol sends binary frames only.
    #[error("text frames are not part of the protocol; send each message as one binary CBOR frame")]
    TextFrame,
    /// The frame ends in the middle of a CBOR item.
    #[error("the frame ends in the middle of a CBOR item (at byte {position})")]
    Truncated { position: usize },
    /// The bytes are not well-formed CBOR.
    #[error("the frame is not valid CBOR at byte {position}: {reason}")]
    InvalidCbor { position: usize, reason: String },
    /// The frame holds something other than one CBOR map.
    #[error("a message must be a CBOR map")]
    NotAMap,
    /// A key of the message map is not a text string.
    #[error("a message key must be a text string")]
    KeyNotText,
    /// Bytes follow the message map.
    #[error("{count} bytes follow the message")]
    TrailingBytes { count: usize },
    /// The map has no `type` key.
    #[error("the message has no `type`")]
    MissingType,
    /// The `type` is one this version does not know: log and drop the frame.
    #[error("unknown message type `{message_type}`")]
    UnknownType { message_type: String },
    /// A field the message type requires is absent.
    #[error("a `{message_type}` message needs `{field}`")]
    MissingField {
        message_type: &'static str,
        field: &'static str,
    },
    /// A field holds the wrong kind of CBOR value.
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// A field holds text that is not a valid id of its kind.
    #[error("`{field}` is not valid: {source}")]
    BadId {
        field: &'static str,
        #[source]
        source: IdError,
    },
}

impl DecodeError {
    /// True for a frame to log and drop: a message type this version does
    /// not know. Every other error is a protocol violation by the sender.
    pub fn is_droppable(&self) -> bool {
        matches!(self, Self::UnknownType { .. })
    }

    pub(super) fn from_cbor(err: &minicbor::decode::Error, position: usize) -> Self {
        if err.is_end_of_input() {
            Self::Truncated { position }
        } else {
            Self::InvalidCbor {
                position: err.position().unwrap_or(position),
                reason: err.to_string(),
            }
        }
    }
}
