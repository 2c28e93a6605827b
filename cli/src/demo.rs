//! `rapport demo`: the sync core at work, in one process.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ROOT, ReadDoc};
use rapport_protocol::ids::{DocumentId, PeerId, UnixMillis};
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::Message;

const TEMPLATE: &str = "Scope: a customer portal.\nTimeline: launch in Q3.\n";

pub(crate) fn run() -> Result<()> {
    let now = now();
    let id = DocumentId::random(&mut rand::rng());
    let staff: PeerId = "staff".parse()?;
    let client: PeerId = "client".parse()?;

    let mut staff_doc = DocumentSync::new(id, staff, requirements_doc()?);
    let mut client_doc = DocumentSync::new(id, client, Automerge::new());
    println!("requirements document {}", id.url());

    connect(&mut staff_doc, &mut client_doc, now);
    println!(
        "client replica synced: {} bytes on the wire",
        sync(&mut staff_doc, &mut client_doc, now)?
    );

    disconnect(&mut staff_doc, &mut client_doc);
    println!("both go offline and edit the same paragraph");
    insert_text(
        &mut staff_doc,
        "Timeline: launch in Q3.",
        " Budget: 40k.",
        now,
    )?;
    insert_text(
        &mut client_doc,
        "Scope: a customer portal.",
        " Must support SSO.",
        now,
    )?;

    connect(&mut staff_doc, &mut client_doc, now);
    let bytes = sync(&mut staff_doc, &mut client_doc, now)?;
    println!("back online: synced in {bytes} bytes");

    let merged = body(staff_doc.doc())?;
    anyhow::ensure!(
        staff_doc.heads() == client_doc.heads() && merged == body(client_doc.doc())?,
        "the replicas did not converge"
    );
    println!("both replicas now read:\n\n{merged}");
    Ok(())
}

fn now() -> UnixMillis {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    UnixMillis(u64::try_from(millis).unwrap_or(u64::MAX))
}

fn requirements_doc() -> Result<Automerge> {
    let mut doc = Automerge::new();
    doc.transact(|tx| {
        tx.put(ROOT, "title", "Customer portal requirements")?;
        let body = tx.put_object(ROOT, "body", ObjType::Text)?;
        tx.splice_text(&body, 0, 0, TEMPLATE)?;
        Ok::<_, AutomergeError>(())
    })
    .map_err(|failure| failure.error)?;
    Ok(doc)
}

fn body(doc: &Automerge) -> Result<String> {
    let (_, body) = doc.get(ROOT, "body")?.context("the document has no body")?;
    Ok(doc.text(&body)?)
}

fn insert_text(sync: &mut DocumentSync, after: &str, text: &str, now: UnixMillis) -> Result<()> {
    let current = body(sync.doc())?;
    let at = current.find(after).context("anchor text not found")? + after.chars().count();
    sync.handle_local_change(now, |tx| {
        let (_, body) = tx.get(ROOT, "body")?.ok_or(AutomergeError::Fail)?;
        tx.splice_text(&body, at, 0, text)
    })?;
    Ok(())
}

fn connect(a: &mut DocumentSync, b: &mut DocumentSync, now: UnixMillis) {
    a.handle_peer_connected(b.local_peer().clone(), now);
    b.handle_peer_connected(a.local_peer().clone(), now);
}

fn disconnect(a: &mut DocumentSync, b: &mut DocumentSync) {
    a.handle_peer_disconnected(&b.local_peer().clone());
    b.handle_peer_disconnected(&a.local_peer().clone());
}

/// Carries frames both ways until both sides are quiet; returns the bytes sent.
fn sync(a: &mut DocumentSync, b: &mut DocumentSync, now: UnixMillis) -> Result<usize> {
    let mut total = 0;
    loop {
        let sent = deliver(a, b, now)? + deliver(b, a, now)?;
        if sent == 0 {
            return Ok(total);
        }
        total += sent;
    }
}

fn deliver(from: &mut DocumentSync, to: &mut DocumentSync, now: UnixMillis) -> Result<usize> {
    let mut bytes = 0;
    while let Some(effect) = from.poll_effect() {
        let Effect::Send(message) = effect else {
            continue;
        };
        let frame = message.encode();
        bytes += frame.len();
        match Message::decode(&frame)? {
            Message::Sync(m) => to.handle_sync(&m, now)?,
            Message::Request(m) => to.handle_request(&m, now)?,
            Message::DocUnavailable(m) => to.handle_unavailable(&m),
            other => anyhow::bail!("unexpected {} message", other.type_name()),
        }
    }
    Ok(bytes)
}
