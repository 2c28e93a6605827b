//! [`Message`] → frame, with the keys in the order `@automerge/automerge-repo`
//! 2.5 writes them (see the captured sessions in `tests/vectors/`).

use minicbor::Encoder;

use super::{
    DocMessage, DocUnavailable, Documents, Ephemeral, ErrorMessage, Join, Leave, Message, Peer,
    PeerMetadata, Rejected, RemoteHeadsChanged, RemoteSubscriptionChange,
};
use crate::ids::{PeerId, StorageId};

type Enc = Encoder<Vec<u8>>;
type Done = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

impl Message {
    /// Writes the message as the payload of one binary WebSocket frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        let done = match self {
            Self::Join(m) => encode_join(&mut e, m),
            Self::Peer(m) => encode_peer(&mut e, m),
            Self::Error(m) => encode_error(&mut e, m),
            Self::Leave(m) => encode_leave(&mut e, m),
            Self::Request(m) => encode_request(&mut e, m),
            Self::Sync(m) => encode_sync(&mut e, m),
            Self::DocUnavailable(m) => encode_doc_unavailable(&mut e, m),
            Self::Ephemeral(m) => encode_ephemeral(&mut e, m),
            Self::RemoteSubscriptionChange(m) => encode_subscription_change(&mut e, m),
            Self::RemoteHeadsChanged(m) => encode_remote_heads_changed(&mut e, m),
            Self::Rejected(m) => encode_rejected(&mut e, m),
            Self::Documents(m) => encode_documents(&mut e, "rapport/documents", m),
            Self::Removed(m) => encode_documents(&mut e, "rapport/removed", m),
        };
        // Writing to a Vec cannot fail, and these functions raise no
        // errors of their own: only the writer could make `done` an error.
        done.expect("encoding a message into a Vec cannot fail");
        e.into_writer()
    }
}

fn encode_join(e: &mut Enc, m: &Join) -> Done {
    e.map(3 + u64::from(m.peer_metadata.is_some()))?;
    e.str("type")?.str("join")?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    if let Some(meta) = &m.peer_metadata {
        e.str("peerMetadata")?;
        encode_metadata(e, meta)?;
    }
    e.str("supportedProtocolVersions")?;
    e.array(m.supported_protocol_versions.len() as u64)?;
    for version in &m.supported_protocol_versions {
        e.str(version)?;
    }
    Ok(())
}

fn encode_peer(e: &mut Enc, m: &Peer) -> Done {
    e.map(4 + u64::from(m.peer_metadata.is_some()))?;
    e.str("type")?.str("peer")?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    if let Some(meta) = &m.peer_metadata {
        e.str("peerMetadata")?;
        encode_metadata(e, meta)?;
    }
    e.str("selectedProtocolVersion")?
        .str(&m.selected_protocol_version)?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    Ok(())
}

fn encode_metadata(e: &mut Enc, meta: &PeerMetadata) -> Done {
    e.map(2)?;
    e.str("storageId")?;
    match &meta.storage_id {
        Some(id) => e.str(id.as_str())?,
        // automerge-repo writes the unset field as `undefined`; so do we.
        None => e.undefined()?,
    };
    e.str("isEphemeral")?.bool(meta.is_ephemeral)?;
    Ok(())
}

fn encode_error(e: &mut Enc, m: &ErrorMessage) -> Done {
    e.map(2 + u64::from(m.sender_id.is_some()) + u64::from(m.target_id.is_some()))?;
    e.str("type")?.str("error")?;
    if let Some(sender) = &m.sender_id {
        e.str("senderId")?.str(sender.as_str())?;
    }
    e.str("message")?.str(&m.message)?;
    if let Some(target) = &m.target_id {
        e.str("targetId")?.str(target.as_str())?;
    }
    Ok(())
}

fn encode_leave(e: &mut Enc, m: &Leave) -> Done {
    e.map(2)?;
    e.str("type")?.str("leave")?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    Ok(())
}

fn encode_sync(e: &mut Enc, m: &DocMessage) -> Done {
    e.map(5)?;
    e.str("type")?.str("sync")?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    e.str("data")?.bytes(&m.data)?;
    e.str("documentId")?.str(&m.document_id.to_string())?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    Ok(())
}

fn encode_request(e: &mut Enc, m: &DocMessage) -> Done {
    e.map(5)?;
    e.str("type")?.str("request")?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    e.str("documentId")?.str(&m.document_id.to_string())?;
    e.str("data")?.bytes(&m.data)?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    Ok(())
}

fn encode_doc_unavailable(e: &mut Enc, m: &DocUnavailable) -> Done {
    e.map(4)?;
    e.str("type")?.str("doc-unavailable")?;
    e.str("documentId")?.str(&m.document_id.to_string())?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    Ok(())
}

impl Ephemeral {
    /// The message as [`Message::encode`] writes it, once for each of
    /// `targets` in place of its own target: everything after the target
    /// (the payload among it) is encoded once, not once per target.
    pub fn encode_for<'a>(&self, targets: impl IntoIterator<Item = &'a PeerId>) -> Vec<Vec<u8>> {
        let mut head = Encoder::new(Vec::new());
        let mut tail = Encoder::new(Vec::new());
        let done =
            encode_ephemeral_head(&mut head).and_then(|()| encode_ephemeral_tail(&mut tail, self));
        done.expect("encoding a message into a Vec cannot fail");
        let (head, tail) = (head.into_writer(), tail.into_writer());
        targets
            .into_iter()
            .map(|target| {
                let mut target_key = Encoder::new(Vec::new());
                target_key
                    .str("targetId")
                    .and_then(|e| e.str(target.as_str()))
                    .expect("encoding a message into a Vec cannot fail");
                let target_key = target_key.into_writer();
                let mut frame = Vec::with_capacity(head.len() + target_key.len() + tail.len());
                frame.extend_from_slice(&head);
                frame.extend_from_slice(&target_key);
                frame.extend_from_slice(&tail);
                frame
            })
            .collect()
    }
}

fn encode_ephemeral(e: &mut Enc, m: &Ephemeral) -> Done {
    encode_ephemeral_head(e)?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    encode_ephemeral_tail(e, m)
}

fn encode_ephemeral_head(e: &mut Enc) -> Done {
    e.map(7)?;
    e.str("type")?.str("ephemeral")?;
    Ok(())
}

fn encode_ephemeral_tail(e: &mut Enc, m: &Ephemeral) -> Done {
    e.str("count")?;
    js_number(e, m.count)?;
    e.str("sessionId")?.str(&m.session_id)?;
    e.str("documentId")?.str(&m.document_id.to_string())?;
    e.str("data")?.bytes(&m.data)?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    Ok(())
}

fn encode_subscription_change(e: &mut Enc, m: &RemoteSubscriptionChange) -> Done {
    e.map(3 + u64::from(m.add.is_some()) + u64::from(m.remove.is_some()))?;
    e.str("type")?.str("remote-subscription-change")?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    for (key, ids) in [("add", &m.add), ("remove", &m.remove)] {
        if let Some(ids) = ids {
            e.str(key)?;
            storage_ids(e, ids)?;
        }
    }
    Ok(())
}

fn storage_ids(e: &mut Enc, ids: &[StorageId]) -> Done {
    e.array(ids.len() as u64)?;
    for id in ids {
        e.str(id.as_str())?;
    }
    Ok(())
}

fn encode_remote_heads_changed(e: &mut Enc, m: &RemoteHeadsChanged) -> Done {
    e.map(5)?;
    e.str("type")?.str("remote-heads-changed")?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    e.str("documentId")?.str(&m.document_id.to_string())?;
    e.str("newHeads")?.map(m.new_heads.len() as u64)?;
    for (storage_id, info) in &m.new_heads {
        e.str(storage_id.as_str())?.map(2)?;
        e.str("heads")?.array(info.heads.len() as u64)?;
        for head in &info.heads {
            e.str(head)?;
        }
        e.str("timestamp")?;
        js_number(e, info.timestamp)?;
    }
    Ok(())
}

fn encode_rejected(e: &mut Enc, m: &Rejected) -> Done {
    e.map(7)?;
    e.str("type")?.str("rapport/rejected")?;
    e.str("senderId")?.str(m.sender_id.as_str())?;
    e.str("targetId")?.str(m.target_id.as_str())?;
    e.str("documentId")?.str(&m.document_id.to_string())?;
    e.str("changes")?.array(m.changes.len() as u64)?;
    for hash in &m.changes {
        e.str(&hash.to_string())?;
    }
    e.str("reason")?.str(m.reason.code())?;
    e.str("message")?.str(&m.message)?;
    Ok(())
}

fn encode_documents(e: &mut Enc, kind: &str, m: &Documents) -> Done {
    let ids = m.documents.iter().map(ToString::to_string);
    write_documents(e, kind, (&m.sender_id, &m.target_id), ids, m.more)
}

fn write_documents<T: AsRef<str>>(
    e: &mut Enc,
    kind: &str,
    (sender_id, target_id): (&PeerId, &PeerId),
    ids: impl ExactSizeIterator<Item = T>,
    more: bool,
) -> Done {
    // `more` only when true, so that a whole list is the four fields it
    // always was.
    e.map(if more { 5 } else { 4 })?;
    e.str("type")?.str(kind)?;
    e.str("senderId")?.str(sender_id.as_str())?;
    e.str("targetId")?.str(target_id.as_str())?;
    e.str("documents")?.array(ids.len() as u64)?;
    for id in ids {
        e.str(id.as_ref())?;
    }
    if more {
        e.str("more")?.bool(true)?;
    }
    Ok(())
}

impl Documents {
    /// `rapport/documents` for ids already written as text (each as its
    /// [`DocumentId`](crate::ids::DocumentId) displays it): byte for byte
    /// what [`Message::encode`] writes for the same ids. A relay lists the
    /// same ids to many connections, and writing an id as text (bs58check:
    /// two SHA-256 and base 58) costs more than copying it.
    pub fn encode_texts(
        sender_id: &PeerId,
        target_id: &PeerId,
        documents: &[&str],
        more: bool,
    ) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        let ids = documents.iter().copied();
        let done = write_documents(
            &mut e,
            "rapport/documents",
            (sender_id, target_id),
            ids,
            more,
        );
        // As in `Message::encode`: only the Vec could fail, and it cannot.
        done.expect("encoding a message into a Vec cannot fail");
        e.into_writer()
    }
}

/// An integer as JS reads it: small ones as CBOR integers, larger ones
/// (millisecond timestamps) as float64, which JS decodes to a plain number
/// where a 64-bit CBOR integer would become a BigInt.
fn js_number(e: &mut Enc, n: u64) -> Done {
    if n <= u64::from(u32::MAX) {
        e.u64(n)?;
    } else {
        // Exact up to 2^53, the range of a JS number; a timestamp in
        // milliseconds stays below that for the next 285,000 years.
        e.f64(n as f64)?;
    }
    Ok(())
}
