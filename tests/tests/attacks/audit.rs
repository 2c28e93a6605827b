//! Audit amplification: a member sending refused changes in a loop adds a
//! bounded number of entries to the workspace's audit log (each one a
//! durable write); the rest are counted in `/metrics`.

use std::time::Duration;

use anyhow::{Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use rapport_client::api::Level;
use rapport_protocol::ids::DocumentId;
use rapport_tests::peer::{PATIENCE, TestPeer, key};
use rapport_tests::relay::{TempDir, TestRelay, client_invite};

use super::{blocking, doc_by, person, stored};

/// Refused batches the reader sends; far more than a key's audit share.
const SENT: u64 = 40;

/// A key's share of the audit log a minute.
const AUDITED: usize = 10;

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_refused_in_a_loop_writes_a_bounded_audit_log() -> Result<()> {
    let dir = TempDir::new("attack-audit");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let (owner, reader) = (key(1), key(2));
    let owner_api = person(&relay, &owner, &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;
    let doc = DocumentId::from_bytes([61; 16]);
    blocking(|| owner_api.add_documents(&ws, &[(doc, None)]))?;
    let owner_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "owner").await?;
    owner_peer.open(doc, doc_by(&owner, 1, "start")?);
    stored(&relay, 1).await?;
    let link = blocking(|| owner_api.create_invite(&ws, &client_invite(doc, Level::Read)))?;
    let reader_api = person(&relay, &reader, &mut dirs)?;
    blocking(|| reader_api.redeem(&link))?;
    let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &reader, "reader").await?;
    peer.open(doc, Automerge::new());
    peer.wait_until(|s| s.doc(doc).get(ROOT, "start").is_ok_and(|v| v.is_some()))
        .await?;

    // Change after change, each refused.
    for n in 0..SENT {
        let before = relay.metric("rapport_refused_changes_total").await?;
        peer.change(doc, |tx| tx.put(ROOT, "reader", n))?;
        refused_past(&relay, before).await?;
    }
    let entries = blocking(|| owner_api.audit(&ws, None, Some(doc)))?
        .into_iter()
        .filter(|e| e.event == "change-refused")
        .count();
    ensure!(
        (1..=AUDITED).contains(&entries),
        "{entries} audit entries for {SENT} refused batches"
    );
    let unaudited = relay.metric("rapport_unaudited_refusals_total").await?;
    ensure!(unaudited >= SENT - AUDITED as u64, "{unaudited} counted");

    // The owner keeps working, and the reader keeps reading.
    owner_peer.change(doc, |tx| tx.put(ROOT, "after", 1))?;
    stored(&relay, 2).await?;
    peer.wait_until(|s| s.doc(doc).get(ROOT, "after").is_ok_and(|v| v.is_some()))
        .await?;
    Ok(())
}

/// Waits until the relay has refused more changes than `before`.
async fn refused_past(relay: &TestRelay, before: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while relay.metric("rapport_refused_changes_total").await? <= before {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay refused nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
