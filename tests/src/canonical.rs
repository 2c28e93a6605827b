//! A [`Message`] as the JS decoder sees it, in the canonical JSON form of
//! [`crate::js`]: what a JS peer would get from our bytes.

use rapport_protocol::wire::{Message, PeerMetadata};
use serde_json::{Map, Value, json};

fn bytes(data: &[u8]) -> Value {
    json!({ "$bytes": hex::encode(data) })
}

fn metadata(meta: &PeerMetadata) -> Value {
    json!({
        "storageId": meta.storage_id.as_ref().map_or(json!({"$undefined": true}), |s| json!(s.as_str())),
        "isEphemeral": meta.is_ephemeral,
    })
}

/// The object a JS peer decodes from `message.encode()`.
pub fn to_js(message: &Message) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(message.type_name()));
    if let Some(sender) = message.sender_id() {
        o.insert("senderId".into(), json!(sender.as_str()));
    }
    if let Some(doc) = message.document_id() {
        o.insert("documentId".into(), json!(doc.to_string()));
    }
    match message {
        Message::Join(m) => {
            if let Some(meta) = &m.peer_metadata {
                o.insert("peerMetadata".into(), metadata(meta));
            }
            o.insert(
                "supportedProtocolVersions".into(),
                json!(m.supported_protocol_versions),
            );
        }
        Message::Peer(m) => {
            if let Some(meta) = &m.peer_metadata {
                o.insert("peerMetadata".into(), metadata(meta));
            }
            o.insert(
                "selectedProtocolVersion".into(),
                json!(m.selected_protocol_version),
            );
            o.insert("targetId".into(), json!(m.target_id.as_str()));
        }
        Message::Error(m) => {
            o.insert("message".into(), json!(m.message));
            if let Some(target) = &m.target_id {
                o.insert("targetId".into(), json!(target.as_str()));
            }
        }
        Message::Leave(_) => {}
        Message::Request(m) | Message::Sync(m) => {
            o.insert("targetId".into(), json!(m.target_id.as_str()));
            o.insert("data".into(), bytes(&m.data));
        }
        Message::DocUnavailable(m) => {
            o.insert("targetId".into(), json!(m.target_id.as_str()));
        }
        Message::Ephemeral(m) => {
            o.insert("targetId".into(), json!(m.target_id.as_str()));
            o.insert("count".into(), json!(m.count));
            o.insert("sessionId".into(), json!(m.session_id));
            o.insert("data".into(), bytes(&m.data));
        }
        Message::RemoteSubscriptionChange(m) => {
            o.insert("targetId".into(), json!(m.target_id.as_str()));
            let ids = |ids: &Vec<_>| {
                json!(
                    ids.iter()
                        .map(|s: &rapport_protocol::ids::StorageId| s.as_str())
                        .collect::<Vec<_>>()
                )
            };
            if let Some(add) = &m.add {
                o.insert("add".into(), ids(add));
            }
            if let Some(remove) = &m.remove {
                o.insert("remove".into(), ids(remove));
            }
        }
        Message::RemoteHeadsChanged(m) => {
            o.insert("targetId".into(), json!(m.target_id.as_str()));
            let heads: Map<String, Value> = m
                .new_heads
                .iter()
                .map(|(storage, info)| {
                    (
                        storage.as_str().to_owned(),
                        json!({ "heads": info.heads, "timestamp": info.timestamp }),
                    )
                })
                .collect();
            o.insert("newHeads".into(), Value::Object(heads));
        }
        Message::Rejected(m) => {
            o.insert("targetId".into(), json!(m.target_id.as_str()));
            let changes: Vec<String> = m.changes.iter().map(ToString::to_string).collect();
            o.insert("changes".into(), json!(changes));
            o.insert("reason".into(), json!(m.reason.code()));
            o.insert("message".into(), json!(m.message));
        }
        _ => {}
    }
    Value::Object(o)
}
