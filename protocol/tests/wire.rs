//! The wire codec against bad input and arbitrary messages.

use proptest::prelude::*;
use rapport_protocol::ids::{ChangeHash, DocumentId, PeerId, StorageId};
use rapport_protocol::wire::{
    DecodeError, DocMessage, DocUnavailable, Documents, Ephemeral, ErrorMessage, Frame, Join,
    Leave, Message, Peer, PeerMetadata, RejectReason, Rejected, RemoteHeads, RemoteHeadsChanged,
    RemoteSubscriptionChange,
};

const DOC: &str = "2FR27bUHzHLUMtji5HeRNij34sFy";

fn sync_message() -> Message {
    Message::Sync(DocMessage {
        sender_id: "a".parse().unwrap(),
        target_id: "b".parse().unwrap(),
        document_id: DOC.parse().unwrap(),
        data: vec![0x42, 0, 0, 1, 0, 0, 0],
    })
}

/// A CBOR map of text keys to raw CBOR values.
fn map(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = vec![0xa0 | entries.len() as u8];
    for (key, value) in entries {
        out.push(0x60 | key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn text(s: &str) -> Vec<u8> {
    let mut out = match s.len() {
        len @ 0..24 => vec![0x60 | len as u8],
        len => vec![0x78, u8::try_from(len).expect("test strings are short")],
    };
    out.extend_from_slice(s.as_bytes());
    out
}

#[test]
fn every_strict_prefix_of_a_message_is_truncated() {
    let bytes = sync_message().encode();
    for cut in 0..bytes.len() {
        let err = Message::decode(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { .. }),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn text_frames_are_refused() {
    let err = Message::from_frame(Frame::Text("{\"type\":\"join\"}")).unwrap_err();
    assert_eq!(err, DecodeError::TextFrame);
    let bytes = sync_message().encode();
    assert_eq!(
        Message::from_frame(Frame::Binary(&bytes)).unwrap(),
        sync_message()
    );
}

#[test]
fn a_message_that_is_not_a_map_is_refused() {
    for bytes in [&[0x80][..], &[0x01], &text("sync"), &[0xf7]] {
        assert_eq!(
            Message::decode(bytes).unwrap_err(),
            DecodeError::NotAMap,
            "{bytes:?}"
        );
    }
}

#[test]
fn a_key_that_is_not_text_is_refused() {
    assert_eq!(
        Message::decode(&[0xa1, 0x01, 0x02]).unwrap_err(),
        DecodeError::KeyNotText
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = sync_message().encode();
    bytes.push(0);
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        DecodeError::TrailingBytes { count: 1 }
    );
}

#[test]
fn an_unknown_type_is_droppable_and_everything_else_is_not() {
    let bytes = map(&[("type", &text("presence-v9")), ("senderId", &text("a"))]);
    let err = Message::decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownType {
            message_type: "presence-v9".into()
        }
    );
    assert!(err.is_droppable());
    assert!(!DecodeError::MissingType.is_droppable());
    assert!(!DecodeError::TextFrame.is_droppable());
}

#[test]
fn a_missing_type_is_refused() {
    let bytes = map(&[("senderId", &text("a"))]);
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        DecodeError::MissingType
    );
}

#[test]
fn wrong_cbor_types_name_the_field() {
    // `data` as text instead of bytes.
    let bytes = map(&[
        ("type", &text("sync")),
        ("senderId", &text("a")),
        ("targetId", &text("b")),
        ("documentId", &text(DOC)),
        ("data", &text("not bytes")),
    ]);
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        DecodeError::WrongType {
            field: "data",
            expected: "a byte string"
        }
    );
    // `type` as a number.
    let bytes = map(&[("type", &[0x01])]);
    assert!(matches!(
        Message::decode(&bytes).unwrap_err(),
        DecodeError::WrongType { field: "type", .. }
    ));
}

#[test]
fn a_document_id_that_is_not_bs58check_is_refused() {
    let bytes = map(&[
        ("type", &text("doc-unavailable")),
        ("senderId", &text("a")),
        ("targetId", &text("b")),
        ("documentId", &text("2FR27bUHzHLUMtji5HeRNij34sFz")),
    ]);
    assert!(matches!(
        Message::decode(&bytes).unwrap_err(),
        DecodeError::BadId {
            field: "documentId",
            ..
        }
    ));
}

#[test]
fn a_missing_field_is_named() {
    let bytes = map(&[("type", &text("leave"))]);
    assert_eq!(
        Message::decode(&bytes).unwrap_err(),
        DecodeError::MissingField {
            message_type: "leave",
            field: "senderId"
        }
    );
}

#[test]
fn oversize_lengths_are_truncation_not_allocation() {
    // A map claiming 2^63 entries, a byte string claiming 2^40 bytes, a text
    // key claiming 4 GiB: each is refused without reserving that memory.
    let huge_map = [0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        Message::decode(&huge_map).unwrap_err(),
        DecodeError::Truncated { .. }
    ));
    let huge_bytes = map(&[("data", &[0x5b, 0, 0, 1, 0, 0, 0, 0, 0])]);
    assert!(matches!(
        Message::decode(&huge_bytes).unwrap_err(),
        DecodeError::Truncated { .. } | DecodeError::InvalidCbor { .. }
    ));
    let huge_key = [0xa1, 0x7a, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        Message::decode(&huge_key).unwrap_err(),
        DecodeError::Truncated { .. }
    ));
}

#[test]
fn deep_nesting_in_an_unknown_field_does_not_overflow_the_stack() {
    let mut deep = vec![0x9f; 200_000]; // indefinite arrays inside each other
    deep.extend(std::iter::repeat_n(0xff, 200_000));
    let mut bytes = map(&[("type", &text("leave")), ("senderId", &text("a"))]);
    bytes[0] += 1;
    bytes.extend(text("x"));
    bytes.extend(deep);
    assert!(matches!(
        Message::decode(&bytes).unwrap(),
        Message::Leave(_)
    ));
}

#[test]
fn indefinite_maps_and_any_key_order_are_read() {
    let mut bytes = vec![0xbf];
    for (key, value) in [
        ("senderId", text("a")),
        ("extra", vec![0x01]),
        ("type", text("leave")),
    ] {
        bytes.extend(text(key));
        bytes.extend(value);
    }
    bytes.push(0xff);
    assert_eq!(
        Message::decode(&bytes).unwrap(),
        Message::Leave(Leave {
            sender_id: "a".parse().unwrap()
        })
    );
}

#[test]
fn large_integers_go_out_as_float64_and_come_back() {
    let message = Message::Ephemeral(Ephemeral {
        sender_id: "a".parse().unwrap(),
        target_id: "b".parse().unwrap(),
        count: 1_764_300_000_000,
        session_id: "s".into(),
        document_id: DOC.parse().unwrap(),
        data: vec![0xa0],
    });
    let bytes = message.encode();
    let float = 1_764_300_000_000f64.to_be_bytes();
    assert!(bytes.windows(9).any(|w| w[0] == 0xfb && w[1..] == float));
    assert_eq!(Message::decode(&bytes).unwrap(), message);
}

fn peer_id() -> impl Strategy<Value = PeerId> {
    "[a-zA-Z0-9-]{1,24}".prop_map(|s| s.parse().unwrap())
}

fn storage_id() -> impl Strategy<Value = StorageId> {
    "[a-f0-9-]{1,36}".prop_map(|s| s.parse().unwrap())
}

fn document_id() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(DocumentId::from_bytes)
}

fn metadata() -> impl Strategy<Value = Option<PeerMetadata>> {
    proptest::option::of(
        (proptest::option::of(storage_id()), any::<bool>()).prop_map(
            |(storage_id, is_ephemeral)| PeerMetadata {
                storage_id,
                is_ephemeral,
            },
        ),
    )
}

fn doc_message() -> impl Strategy<Value = DocMessage> {
    (
        peer_id(),
        peer_id(),
        document_id(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(sender_id, target_id, document_id, data)| DocMessage {
            sender_id,
            target_id,
            document_id,
            data,
        })
}

/// JS numbers: exact integers up to 2^53.
fn js_integer() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..=u64::from(u32::MAX), 0u64..=(1 << 53)]
}

fn reason() -> impl Strategy<Value = RejectReason> {
    prop_oneof![
        Just(RejectReason::ActorOfAnotherKey),
        Just(RejectReason::ReadOnly),
        Just(RejectReason::StorageUnavailable),
        Just(RejectReason::InvalidChange),
        Just(RejectReason::CommentsOnly),
        Just(RejectReason::QuotaExceeded),
        Just(RejectReason::WorkspaceFull),
        "x-[a-z]{1,8}".prop_map(RejectReason::Unrecognized),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            peer_id(),
            metadata(),
            proptest::collection::vec("[0-9]{1,2}", 0..3)
        )
            .prop_map(|(sender_id, peer_metadata, supported_protocol_versions)| {
                Message::Join(Join {
                    sender_id,
                    peer_metadata,
                    supported_protocol_versions,
                })
            }),
        (peer_id(), metadata(), "[0-9]", peer_id()).prop_map(
            |(sender_id, peer_metadata, selected_protocol_version, target_id)| Message::Peer(
                Peer {
                    sender_id,
                    peer_metadata,
                    selected_protocol_version,
                    target_id
                }
            )
        ),
        (
            proptest::option::of(peer_id()),
            ".{0,40}",
            proptest::option::of(peer_id())
        )
            .prop_map(
                |(sender_id, message, target_id)| Message::Error(ErrorMessage {
                    sender_id,
                    message,
                    target_id
                })
            ),
        peer_id().prop_map(|sender_id| Message::Leave(Leave { sender_id })),
        doc_message().prop_map(Message::Request),
        doc_message().prop_map(Message::Sync),
        (peer_id(), peer_id(), document_id()).prop_map(|(sender_id, target_id, document_id)| {
            Message::DocUnavailable(DocUnavailable {
                sender_id,
                target_id,
                document_id,
            })
        }),
        (doc_message(), js_integer(), "[a-z0-9]{1,12}").prop_map(|(m, count, session_id)| {
            Message::Ephemeral(Ephemeral {
                sender_id: m.sender_id,
                target_id: m.target_id,
                count,
                session_id,
                document_id: m.document_id,
                data: m.data,
            })
        }),
        (
            peer_id(),
            peer_id(),
            proptest::option::of(proptest::collection::vec(storage_id(), 0..3)),
            proptest::option::of(proptest::collection::vec(storage_id(), 0..3)),
        )
            .prop_map(|(sender_id, target_id, add, remove)| {
                Message::RemoteSubscriptionChange(RemoteSubscriptionChange {
                    sender_id,
                    target_id,
                    add,
                    remove,
                })
            }),
        (
            doc_message(),
            proptest::collection::btree_map(
                storage_id(),
                (
                    proptest::collection::vec("[1-9A-HJ-NP-Za-km-z]{40,50}", 0..3),
                    js_integer()
                ),
                0..3
            )
        )
            .prop_map(
                |(m, heads)| Message::RemoteHeadsChanged(RemoteHeadsChanged {
                    sender_id: m.sender_id,
                    target_id: m.target_id,
                    document_id: m.document_id,
                    new_heads: heads
                        .into_iter()
                        .map(|(id, (heads, timestamp))| (id, RemoteHeads { heads, timestamp }))
                        .collect(),
                })
            ),
        (
            doc_message(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..4),
            reason(),
            ".{0,40}"
        )
            .prop_map(|(m, hashes, reason, message)| Message::Rejected(Rejected {
                sender_id: m.sender_id,
                target_id: m.target_id,
                document_id: m.document_id,
                changes: hashes.into_iter().map(ChangeHash::from_bytes).collect(),
                reason,
                message,
            })),
        (
            doc_message(),
            proptest::collection::vec(doc_message(), 0..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(m, listed, removed, more)| {
                let documents = Documents {
                    sender_id: m.sender_id,
                    target_id: m.target_id,
                    documents: listed.into_iter().map(|d| d.document_id).collect(),
                    more,
                };
                if removed {
                    Message::Removed(documents)
                } else {
                    Message::Documents(documents)
                }
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_message_round_trips(message in message()) {
        let bytes = message.encode();
        prop_assert_eq!(Message::decode(&bytes), Ok(message));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        message in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = message.encode();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let end = cut.index(bytes.len() + 1);
        let _ = Message::decode(&bytes[..end]);
        let _ = Message::decode(&bytes);
    }
}

#[test]
fn an_ephemeral_encoded_for_many_targets_is_byte_for_byte_each_one_encoded_alone() {
    let message = Ephemeral {
        sender_id: "alice".parse().unwrap(),
        target_id: "relay".parse().unwrap(),
        count: 7,
        session_id: "s1".into(),
        document_id: DocumentId::from_bytes([3; 16]),
        data: vec![0xa1, 0x61, b'x', 0x01],
    };
    let targets: Vec<PeerId> = vec![
        "bob".parse().unwrap(),
        "carol-with-a-long-id".parse().unwrap(),
    ];
    let frames = message.encode_for(&targets);
    assert_eq!(frames.len(), 2);
    for (frame, target) in frames.iter().zip(&targets) {
        let alone = Message::Ephemeral(Ephemeral {
            target_id: target.clone(),
            ..message.clone()
        })
        .encode();
        assert_eq!(frame, &alone);
        assert!(
            matches!(Message::decode(frame), Ok(Message::Ephemeral(e)) if &e.target_id == target)
        );
    }
}

/// A page of `rapport/documents` other than the last says `more: true`; the
/// last (or a whole list) has no `more` at all, so that it is the same four
/// fields older relays sent, and a list without it reads as the last page.
#[test]
fn a_documents_page_says_more_and_the_last_does_not() {
    let list = |more| {
        Message::Documents(Documents {
            sender_id: "relay".parse().unwrap(),
            target_id: "me".parse().unwrap(),
            documents: vec![DOC.parse().unwrap()],
            more,
        })
    };
    let ids = [0x81].into_iter().chain(text(DOC)).collect::<Vec<u8>>();
    let whole = map(&[
        ("type", &text("rapport/documents")),
        ("senderId", &text("relay")),
        ("targetId", &text("me")),
        ("documents", &ids),
    ]);
    assert_eq!(list(false).encode(), whole);
    assert_eq!(Message::decode(&whole).unwrap(), list(false));

    let page = map(&[
        ("type", &text("rapport/documents")),
        ("senderId", &text("relay")),
        ("targetId", &text("me")),
        ("documents", &ids),
        ("more", &[0xf5]),
    ]);
    assert_eq!(list(true).encode(), page);
    assert_eq!(Message::decode(&page).unwrap(), list(true));
    let (relay, me) = ("relay".parse().unwrap(), "me".parse().unwrap());
    assert_eq!(Documents::encode_texts(&relay, &me, &[DOC], true), page);
    assert_eq!(Documents::encode_texts(&relay, &me, &[DOC], false), whole);

    let not_a_bool = map(&[
        ("type", &text("rapport/documents")),
        ("senderId", &text("relay")),
        ("targetId", &text("me")),
        ("documents", &ids),
        ("more", &text("yes")),
    ]);
    assert!(matches!(
        Message::decode(&not_a_bool),
        Err(DecodeError::WrongType { field: "more", .. })
    ));
}
