//! Documents no workspace lists belong to their first writer, and one key
//! holds a bounded number of them.

use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use rapport_protocol::ids::DocumentId;
use rapport_server::{AuthMode, Limits};
use rapport_tests::peer::{TestPeer, key};
use rapport_tests::relay::{TempDir, TestRelay};

use super::{blocking, doc_by, person, refusal, stored};

#[tokio::test(flavor = "multi_thread")]
async fn a_document_no_workspace_lists_is_its_first_writers_alone() -> Result<()> {
    let dir = TempDir::new("attack-unlisted");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let (ann, ben) = (key(1), key(2));
    let ann_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &ann, "ann").await?;
    let ben_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &ben, "ben").await?;

    // Ben asks for a document before anybody wrote it; then Ann writes it.
    let early = DocumentId::from_bytes([11; 16]);
    ben_peer.open(early, Automerge::new());
    ben_peer.settle(Duration::from_millis(300)).await;
    ann_peer.open(early, doc_by(&ann, 1, "ann")?);
    let secret = DocumentId::from_bytes([12; 16]);
    ann_peer.open(secret, doc_by(&ann, 1, "ann")?);
    stored(&relay, 2).await?;

    // Ben cannot read what Ann wrote, asked before or after.
    ben_peer.open(secret, Automerge::new());
    ben_peer
        .wait_until(|s| s.unavailable.contains(&secret))
        .await?;
    ben_peer.settle(Duration::from_millis(300)).await;
    let leaked = ben_peer.with(|s| {
        [early, secret].iter().any(|id| {
            s.docs
                .get(id)
                .is_some_and(|d| d.doc().get(ROOT, "ann").ok().flatten().is_some())
        })
    });
    ensure!(!leaked, "a document claimed by ann reached ben");

    // Nor write it: his change is neither stored nor forwarded.
    let other = DocumentId::from_bytes([13; 16]);
    ben_peer.open(other, doc_by(&ben, 1, "ben")?);
    stored(&relay, 3).await?;
    let before = relay.metric("rapport_changes_stored_total").await?;
    ben_peer.open(secret, doc_by(&ben, 3, "ben")?);
    ben_peer.settle(Duration::from_millis(500)).await;
    ensure!(
        relay.metric("rapport_changes_stored_total").await? == before,
        "ben's change to ann's document was stored"
    );
    let ann_sees = ann_peer.with(|s| s.doc(secret).get(ROOT, "ben").ok().flatten().is_some());
    ensure!(!ann_sees, "ben's change reached ann");

    // Nor take it over by listing it in a workspace of his own.
    let ben_api = person(&relay, &ben, &mut dirs)?;
    let ben_ws = blocking(|| ben_api.create_workspace("Ben's"))?;
    let (status, message) = refusal(blocking(|| {
        ben_api.add_documents(&ben_ws, &[(secret, None)])
    }))?;
    ensure!(
        status == 403 && message.contains("outside this workspace"),
        "{status} {message}"
    );
    // Ann lists her own document, and she keeps working.
    let ann_api = person(&relay, &ann, &mut dirs)?;
    let ann_ws = blocking(|| ann_api.create_workspace("Ann's"))?;
    blocking(|| ann_api.add_documents(&ann_ws, &[(secret, None)]))?;
    ann_peer.change(secret, |tx| tx.put(ROOT, "more", 1))?;
    stored(&relay, before + 1).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_holds_a_bounded_number_of_documents_outside_workspaces() -> Result<()> {
    let dir = TempDir::new("attack-unlisted-quota");
    let limits = Limits {
        max_unlisted_per_key: 3,
        ..Limits::default()
    };
    let relay = TestRelay::start_with(dir.path(), AuthMode::Token, limits).await?;
    let hoarder = key(1);
    let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &hoarder, "hoarder").await?;
    for n in 0..3u8 {
        peer.open(
            DocumentId::from_bytes([70 + n; 16]),
            doc_by(&hoarder, 1, "n")?,
        );
    }
    stored(&relay, 3).await?;
    // The fourth is refused, and said so.
    peer.open(DocumentId::from_bytes([79; 16]), doc_by(&hoarder, 1, "n")?);
    peer.wait_until(|s| {
        s.rejected
            .iter()
            .any(|r| r.reason == rapport_protocol::wire::RejectReason::QuotaExceeded)
    })
    .await?;
    ensure!(relay.metric("rapport_changes_stored_total").await? == 3);
    // Listing one in a workspace makes room; others are not limited by it.
    let mut dirs = Vec::new();
    let api = person(&relay, &hoarder, &mut dirs)?;
    let ws = blocking(|| api.create_workspace("Mine"))?;
    blocking(|| api.add_documents(&ws, &[(DocumentId::from_bytes([70; 16]), None)]))?;
    peer.open(DocumentId::from_bytes([80; 16]), doc_by(&hoarder, 1, "n")?);
    stored(&relay, 4).await?;
    let other = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "other").await?;
    other.open(DocumentId::from_bytes([81; 16]), doc_by(&key(2), 1, "n")?);
    stored(&relay, 5).await?;
    Ok(())
}
