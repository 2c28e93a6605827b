//! Frame → [`Message`]. Two passes: the first splits the top-level map into
//! `(key, raw value)` pairs borrowed from the frame, the second reads the
//! fields the message's `type` needs. Keys may come in any order, so the type
//! is only known after the first pass; fields of unknown keys are never read.

use minicbor::Decoder;
use minicbor::data::Type;

use super::{
    DecodeError, DocMessage, DocUnavailable, Documents, Ephemeral, ErrorMessage, Join, Leave,
    Message, Peer, PeerMetadata, RejectReason, Rejected, RemoteHeads, RemoteHeadsChanged,
    RemoteSubscriptionChange,
};
use crate::ids::{ChangeHash, DocumentId, PeerId, StorageId};

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl Message {
    /// Reads one message from the payload of one binary WebSocket frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let fields = Fields::parse(frame)?;
        if fields.trailing > 0 {
            return Err(DecodeError::TrailingBytes {
                count: fields.trailing,
            });
        }
        let message_type = fields
            .raw("type")
            .ok_or(DecodeError::MissingType)
            .and_then(|raw| read_str(raw, "type"))?;
        match message_type {
            "join" => decode_join(&fields).map(Message::Join),
            "peer" => decode_peer(&fields).map(Message::Peer),
            "error" => decode_error(&fields).map(Message::Error),
            "leave" => decode_leave(&fields).map(Message::Leave),
            "request" => decode_doc_message(&fields, "request").map(Message::Request),
            "sync" => decode_doc_message(&fields, "sync").map(Message::Sync),
            "doc-unavailable" => decode_doc_unavailable(&fields).map(Message::DocUnavailable),
            "ephemeral" => decode_ephemeral(&fields).map(Message::Ephemeral),
            "remote-subscription-change" => {
                decode_subscription_change(&fields).map(Message::RemoteSubscriptionChange)
            }
            "remote-heads-changed" => {
                decode_remote_heads_changed(&fields).map(Message::RemoteHeadsChanged)
            }
            "rapport/rejected" => decode_rejected(&fields).map(Message::Rejected),
            "rapport/documents" => {
                decode_documents(&fields, "rapport/documents").map(Message::Documents)
            }
            "rapport/removed" => decode_documents(&fields, "rapport/removed").map(Message::Removed),
            other => Err(DecodeError::UnknownType {
                message_type: other.chars().take(64).collect(),
            }),
        }
    }
}

fn decode_join(f: &Fields<'_>) -> Result<Join, DecodeError> {
    const T: &str = "join";
    Ok(Join {
        sender_id: f.peer_id(T, "senderId")?,
        peer_metadata: f.peer_metadata()?,
        supported_protocol_versions: f
            .str_array(T, "supportedProtocolVersions")?
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

fn decode_peer(f: &Fields<'_>) -> Result<Peer, DecodeError> {
    const T: &str = "peer";
    Ok(Peer {
        sender_id: f.peer_id(T, "senderId")?,
        peer_metadata: f.peer_metadata()?,
        selected_protocol_version: f.str(T, "selectedProtocolVersion")?.to_owned(),
        target_id: f.peer_id(T, "targetId")?,
    })
}

fn decode_error(f: &Fields<'_>) -> Result<ErrorMessage, DecodeError> {
    Ok(ErrorMessage {
        sender_id: f.opt_peer_id("senderId")?,
        message: f.str("error", "message")?.to_owned(),
        target_id: f.opt_peer_id("targetId")?,
    })
}

fn decode_leave(f: &Fields<'_>) -> Result<Leave, DecodeError> {
    Ok(Leave {
        sender_id: f.peer_id("leave", "senderId")?,
    })
}

fn decode_doc_message(f: &Fields<'_>, t: &'static str) -> Result<DocMessage, DecodeError> {
    Ok(DocMessage {
        sender_id: f.peer_id(t, "senderId")?,
        target_id: f.peer_id(t, "targetId")?,
        document_id: f.document_id(t)?,
        data: f.bytes(t, "data")?.to_vec(),
    })
}

fn decode_doc_unavailable(f: &Fields<'_>) -> Result<DocUnavailable, DecodeError> {
    const T: &str = "doc-unavailable";
    Ok(DocUnavailable {
        sender_id: f.peer_id(T, "senderId")?,
        target_id: f.peer_id(T, "targetId")?,
        document_id: f.document_id(T)?,
    })
}

fn decode_ephemeral(f: &Fields<'_>) -> Result<Ephemeral, DecodeError> {
    const T: &str = "ephemeral";
    Ok(Ephemeral {
        sender_id: f.peer_id(T, "senderId")?,
        target_id: f.peer_id(T, "targetId")?,
        count: f.uint(T, "count")?,
        session_id: f.str(T, "sessionId")?.to_owned(),
        document_id: f.document_id(T)?,
        data: f.bytes(T, "data")?.to_vec(),
    })
}

fn decode_subscription_change(f: &Fields<'_>) -> Result<RemoteSubscriptionChange, DecodeError> {
    const T: &str = "remote-subscription-change";
    Ok(RemoteSubscriptionChange {
        sender_id: f.peer_id(T, "senderId")?,
        target_id: f.peer_id(T, "targetId")?,
        add: f.opt_storage_ids("add")?,
        remove: f.opt_storage_ids("remove")?,
    })
}

fn decode_remote_heads_changed(f: &Fields<'_>) -> Result<RemoteHeadsChanged, DecodeError> {
    const T: &str = "remote-heads-changed";
    let raw = f.required(T, "newHeads")?;
    let per_storage = Fields::parse_nested(raw, "newHeads")?;
    let mut new_heads = Vec::with_capacity(per_storage.entries.len());
    for &(storage_id, raw) in &per_storage.entries {
        let storage_id = parse_id::<StorageId>(storage_id, "newHeads")?;
        let info = Fields::parse_nested(raw, "newHeads")?;
        let heads = info.str_array(T, "heads")?;
        new_heads.push((
            storage_id,
            RemoteHeads {
                heads: heads.into_iter().map(str::to_owned).collect(),
                timestamp: info.uint(T, "timestamp")?,
            },
        ));
    }
    Ok(RemoteHeadsChanged {
        sender_id: f.peer_id(T, "senderId")?,
        target_id: f.peer_id(T, "targetId")?,
        document_id: f.document_id(T)?,
        new_heads,
    })
}

fn decode_rejected(f: &Fields<'_>) -> Result<Rejected, DecodeError> {
    const T: &str = "rapport/rejected";
    let changes = f
        .str_array(T, "changes")?
        .into_iter()
        .map(|text| parse_id::<ChangeHash>(text, "changes"))
        .collect::<Result<_, _>>()?;
    Ok(Rejected {
        sender_id: f.peer_id(T, "senderId")?,
        target_id: f.peer_id(T, "targetId")?,
        document_id: f.document_id(T)?,
        changes,
        reason: RejectReason::from_code(f.str(T, "reason")?),
        message: f.opt_str("message")?.unwrap_or_default().to_owned(),
    })
}

fn decode_documents(f: &Fields<'_>, t: &'static str) -> Result<Documents, DecodeError> {
    let documents = f
        .str_array(t, "documents")?
        .into_iter()
        .map(|text| parse_id::<DocumentId>(text, "documents"))
        .collect::<Result<_, _>>()?;
    Ok(Documents {
        sender_id: f.peer_id(t, "senderId")?,
        target_id: f.peer_id(t, "targetId")?,
        documents,
        more: f.opt_bool("more")?,
    })
}

/// The entries of one CBOR map, each value still raw bytes of the frame.
struct Fields<'a> {
    entries: Vec<(&'a str, &'a [u8])>,
    /// Bytes after the map.
    trailing: usize,
}

impl<'a> Fields<'a> {
    fn parse(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(frame);
        let cbor = |d: &Decoder<'_>| {
            let position = d.position();
            move |e: minicbor::decode::Error| DecodeError::from_cbor(&e, position)
        };
        match d.datatype().map_err(cbor(&d))? {
            Type::Map | Type::MapIndef => {}
            _ => return Err(DecodeError::NotAMap),
        }
        let len = d.map().map_err(cbor(&d))?;
        // Each entry takes at least two bytes, so the frame bounds the capacity.
        let capacity = len.unwrap_or(8).min(frame.len() as u64 / 2) as usize;
        let mut entries = Vec::with_capacity(capacity);
        let mut remaining = len;
        loop {
            match remaining {
                Some(0) => break,
                Some(n) => remaining = Some(n - 1),
                None => {
                    if d.datatype().map_err(cbor(&d))? == Type::Break {
                        d.skip().map_err(cbor(&d))?;
                        break;
                    }
                }
            }
            let key = match d.datatype().map_err(cbor(&d))? {
                Type::String => d.str().map_err(cbor(&d))?,
                _ => {
                    // Still walk the item so that truncation is reported as such.
                    d.skip().map_err(cbor(&d))?;
                    return Err(DecodeError::KeyNotText);
                }
            };
            let start = d.position();
            d.skip().map_err(cbor(&d))?;
            entries.push((key, &frame[start..d.position()]));
        }
        Ok(Self {
            entries,
            trailing: frame.len() - d.position(),
        })
    }

    /// A map inside a field, such as `peerMetadata`.
    fn parse_nested(raw: &'a [u8], field: &'static str) -> Result<Self, DecodeError> {
        Self::parse(raw).map_err(|e| match e {
            DecodeError::NotAMap | DecodeError::KeyNotText => DecodeError::WrongType {
                field,
                expected: "a map with text keys",
            },
            other => other,
        })
    }

    /// The raw value of `key`; the last one wins if a key repeats, as in JS.
    fn raw(&self, key: &str) -> Option<&'a [u8]> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
    }

    /// The raw value of `key`, unless it is absent, `undefined` or `null`.
    fn present(&self, key: &str) -> Option<&'a [u8]> {
        self.raw(key).filter(|raw| !is_unset(raw))
    }

    fn required(&self, t: &'static str, key: &'static str) -> Result<&'a [u8], DecodeError> {
        self.present(key).ok_or(DecodeError::MissingField {
            message_type: t,
            field: key,
        })
    }

    fn str(&self, t: &'static str, key: &'static str) -> Result<&'a str, DecodeError> {
        read_str(self.required(t, key)?, key)
    }

    fn opt_str(&self, key: &'static str) -> Result<Option<&'a str>, DecodeError> {
        self.present(key).map(|raw| read_str(raw, key)).transpose()
    }

    /// A boolean that is false when absent.
    fn opt_bool(&self, key: &'static str) -> Result<bool, DecodeError> {
        let Some(raw) = self.present(key) else {
            return Ok(false);
        };
        Decoder::new(raw)
            .bool()
            .map_err(|_| DecodeError::WrongType {
                field: key,
                expected: "a boolean",
            })
    }

    fn bytes(&self, t: &'static str, key: &'static str) -> Result<&'a [u8], DecodeError> {
        let raw = self.required(t, key)?;
        Decoder::new(raw)
            .bytes()
            .map_err(|_| DecodeError::WrongType {
                field: key,
                expected: "a byte string",
            })
    }

    fn uint(&self, t: &'static str, key: &'static str) -> Result<u64, DecodeError> {
        read_uint(self.required(t, key)?, key)
    }

    fn peer_id(&self, t: &'static str, key: &'static str) -> Result<PeerId, DecodeError> {
        parse_id(self.str(t, key)?, key)
    }

    fn opt_peer_id(&self, key: &'static str) -> Result<Option<PeerId>, DecodeError> {
        self.opt_str(key)?
            .map(|text| parse_id(text, key))
            .transpose()
    }

    fn document_id(&self, t: &'static str) -> Result<DocumentId, DecodeError> {
        parse_id(self.str(t, "documentId")?, "documentId")
    }

    fn str_array(&self, t: &'static str, key: &'static str) -> Result<Vec<&'a str>, DecodeError> {
        read_str_array(self.required(t, key)?, key)
    }

    fn opt_storage_ids(&self, key: &'static str) -> Result<Option<Vec<StorageId>>, DecodeError> {
        let Some(raw) = self.present(key) else {
            return Ok(None);
        };
        read_str_array(raw, key)?
            .into_iter()
            .map(|text| parse_id(text, key))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    fn peer_metadata(&self) -> Result<Option<PeerMetadata>, DecodeError> {
        const FIELD: &str = "peerMetadata";
        let Some(raw) = self.present(FIELD) else {
            return Ok(None);
        };
        let meta = Fields::parse_nested(raw, FIELD)?;
        let storage_id = meta
            .opt_str("storageId")?
            .map(|text| parse_id(text, "storageId"))
            .transpose()?;
        let is_ephemeral = meta.opt_bool("isEphemeral")?;
        Ok(Some(PeerMetadata {
            storage_id,
            is_ephemeral,
        }))
    }
}

/// `undefined` (what cbor-x writes for an unset JS field) or `null`.
fn is_unset(raw: &[u8]) -> bool {
    matches!(raw, [0xf6] | [0xf7])
}

fn read_str<'a>(raw: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    Decoder::new(raw).str().map_err(|_| DecodeError::WrongType {
        field,
        expected: "a text string",
    })
}

fn read_str_array<'a>(raw: &'a [u8], field: &'static str) -> Result<Vec<&'a str>, DecodeError> {
    let wrong = || DecodeError::WrongType {
        field,
        expected: "an array of text strings",
    };
    let mut d = Decoder::new(raw);
    let len = d.array().map_err(|_| wrong())?;
    let mut items = Vec::with_capacity(len.unwrap_or(0).min(raw.len() as u64) as usize);
    let mut remaining = len;
    loop {
        match remaining {
            Some(0) => break,
            Some(n) => remaining = Some(n - 1),
            None if d.datatype().map_err(|_| wrong())? == Type::Break => break,
            None => {}
        }
        items.push(d.str().map_err(|_| wrong())?);
    }
    Ok(items)
}

/// A non-negative integer, written by JS as a CBOR integer or, above 2^32,
/// as a float.
fn read_uint(raw: &[u8], field: &'static str) -> Result<u64, DecodeError> {
    let wrong = || DecodeError::WrongType {
        field,
        expected: "a non-negative integer",
    };
    let mut d = Decoder::new(raw);
    match d.datatype().map_err(|_| wrong())? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => d.u64().map_err(|_| wrong()),
        Type::F32 | Type::F64 => {
            let value = d.f64().map_err(|_| wrong())?;
            if value.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&value) {
                // In range and integral, so the cast is exact.
                Ok(value as u64)
            } else {
                Err(wrong())
            }
        }
        _ => Err(wrong()),
    }
}

fn parse_id<T>(text: &str, field: &'static str) -> Result<T, DecodeError>
where
    T: std::str::FromStr<Err = crate::ids::IdError>,
{
    text.parse()
        .map_err(|source| DecodeError::BadId { field, source })
}
