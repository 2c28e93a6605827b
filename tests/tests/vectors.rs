//! Every frame captured from the real JS packages decodes to the message the
//! transcript shows, and what we encode from it is read back by the JS
//! decoder exactly as the original frame was.

use automerge::sync;
use rapport_protocol::wire::Message;
use rapport_tests::{canonical, js, vectors};

fn all_frames() -> Vec<vectors::Frame> {
    let frames: Vec<_> = vectors::TRANSCRIPTS
        .iter()
        .flat_map(|name| vectors::load(name).expect("the transcripts in tests/vectors parse"))
        .collect();
    // 32 frames with a payload in each transcript (the close frames are empty).
    assert_eq!(frames.len(), 64, "frames found in the transcripts");
    frames
}

#[test]
fn every_frame_decodes_to_what_the_transcript_shows() {
    for frame in all_frames() {
        let message = Message::decode(&frame.bytes)
            .unwrap_or_else(|e| panic!("{}: does not decode: {e}", frame.label));
        assert_eq!(canonical::to_js(&message), frame.js, "{}", frame.label);
    }
}

#[test]
fn sync_payloads_are_the_automerge_messages_the_transcript_shows() {
    let mut checked = 0;
    for frame in all_frames() {
        let Some(summary) = &frame.sync_summary else {
            continue;
        };
        let (Message::Sync(m) | Message::Request(m)) = Message::decode(&frame.bytes).unwrap()
        else {
            panic!(
                "{}: a sync summary on a frame that is not sync or request",
                frame.label
            );
        };
        let decoded = sync::Message::decode(&m.data).unwrap();
        let heads: Vec<String> = decoded.heads.iter().map(ToString::to_string).collect();
        assert_eq!(heads.len(), summary.heads.len(), "{}", frame.label);
        for (ours, shown) in heads.iter().zip(&summary.heads) {
            let shown = shown.trim_end_matches("..");
            assert!(
                ours.starts_with(shown),
                "{}: {ours} vs {shown}",
                frame.label
            );
        }
        assert_eq!(decoded.changes.len(), summary.changes, "{}", frame.label);
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} sync frames checked");
}

#[test]
fn the_js_decoder_reads_our_encoding_as_it_reads_the_original() {
    let frames = all_frames();
    let ours: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| Message::decode(&f.bytes).unwrap().encode())
        .collect();
    let originals: Vec<Vec<u8>> = frames.iter().map(|f| f.bytes.clone()).collect();
    let from_ours = js::js_decode(&ours).expect("the JS decoder runs");
    let from_originals = js::js_decode(&originals).expect("the JS decoder runs");
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(
            from_originals[i], frame.js,
            "{}: JS reads the capture",
            frame.label
        );
        assert_eq!(
            from_ours[i], from_originals[i],
            "{}: JS reads our bytes",
            frame.label
        );
    }
}

#[test]
fn our_encoding_keeps_the_js_key_order_and_is_minimal() {
    let frames = all_frames();
    let ours: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| Message::decode(&f.bytes).unwrap().encode())
        .collect();
    let originals: Vec<Vec<u8>> = frames.iter().map(|f| f.bytes.clone()).collect();
    // The JSON text as node prints it keeps the decoded object's key order.
    let from_ours = js::js_decode_lines(&ours).expect("the JS decoder runs");
    let from_originals = js::js_decode_lines(&originals).expect("the JS decoder runs");
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(from_ours[i], from_originals[i], "{}", frame.label);
        // cbor-x writes every map header in three bytes (b9 00 0n); we write
        // one byte, and nothing else is longer or shorter.
        let maps = 1 + usize::from(from_ours[i].contains("peerMetadata"));
        assert_eq!(
            ours[i].len() + 2 * maps,
            frame.bytes.len(),
            "{}",
            frame.label
        );
        assert_eq!(
            Message::decode(&ours[i]).unwrap().encode(),
            ours[i],
            "{}",
            frame.label
        );
    }
}
