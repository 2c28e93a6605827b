//! `rapport-server import`: a workspace exported from one relay and
//! imported into a fresh one serves the same documents, with their whole
//! history, to the owner the operator named, and to nobody else; threads
//! are threads of their records again; and what cannot be imported is
//! refused with nothing written.

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use rapport_client::api::RelayApi;
use rapport_client::identity::Identity;
use rapport_model::{Customer, Relationship, Thread};
use rapport_protocol::ids::DocumentId;
use rapport_server::import::{ImportError, import};
use rapport_tests::peer::{TestPeer, actor_of, key, public};
use rapport_tests::relay::{TempDir, TestRelay};

/// A document written by `doc`'s closure as key `n`'s first actor.
fn made_by(n: u8, write: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor_of(&key(n), 1));
    let mut tx = doc.transaction();
    write(&mut tx);
    tx.commit();
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_a_fresh_relay_serves_the_same_documents() -> Result<()> {
    let old = TempDir::new("import-old");
    let relay = TestRelay::start(old.path()).await?;
    let record = DocumentId::from_bytes([61; 16]);
    let thread = DocumentId::from_bytes([62; 16]);
    let ws = relay.share(&key(1), &[&key(2)], &[record, thread]).await?;
    let ann = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "ann").await?;
    let bob = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(2), "bob").await?;
    ann.open(
        record,
        made_by(1, |tx| {
            Customer::new("Acme", Relationship::Client)
                .write(tx)
                .unwrap();
        }),
    );
    ann.open(
        thread,
        made_by(1, |tx| {
            Thread::new(&record).write(tx).unwrap();
        }),
    );
    // A second author: the history travels whole, whoever wrote it.
    bob.open(record, Automerge::new().with_actor(actor_of(&key(2), 1)));
    bob.wait_until(|s| s.doc(record).get(ROOT, "name").ok().flatten().is_some())
        .await?;
    bob.change(record, |tx| tx.put(ROOT, "email", "buyer@acme.test"))?;
    ann.wait_until(|s| s.doc(record).get(ROOT, "email").ok().flatten().is_some())
        .await?;
    // Ann's thread is on the relay (forwarded only once stored) before the
    // export.
    bob.open(thread, Automerge::new().with_actor(actor_of(&key(2), 1)));
    bob.wait_until(|s| Thread::read(s.doc(thread)).is_ok())
        .await?;
    let exports = TempDir::new("import-export");
    let to = exports.path().join("acme");
    let (data, ws2, to2) = (old.path().to_owned(), ws.clone(), to.clone());
    tokio::task::spawn_blocking(move || rapport_server::control::export(&data, &ws2, &to2))
        .await??;
    ann.close().await;
    bob.close().await;
    // What the export holds of each document is what must arrive.
    let manifest: rapport_model::export::Manifest =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json"))?)?;
    let heads = [record, thread].map(|id| {
        let entry = manifest.documents.iter().find(|e| e.id == id.to_string());
        let mut heads: Vec<String> = entry.map(|e| e.heads.clone()).unwrap_or_default();
        heads.sort();
        heads
    });

    // The new relay: Cleo (key 3) owns the imported workspace.
    let new = TempDir::new("import-new");
    let (data, from) = (new.path().to_owned(), to.clone());
    let done =
        tokio::task::spawn_blocking(move || import(&data, &from, public(&key(3)), "Acme", None))
            .await??;
    ensure!(done.workspace == ws && done.documents >= 3, "{done:?}");
    let fresh = TestRelay::start(new.path()).await?;
    // Importing again, while it serves, is refused.
    let (data, from) = (new.path().to_owned(), to.clone());
    let again =
        tokio::task::spawn_blocking(move || import(&data, &from, public(&key(3)), "Acme", None))
            .await?;
    ensure!(
        matches!(again, Err(ImportError::Running { .. })),
        "{again:?}"
    );

    let cleo = TestPeer::connect_as(&fresh.url(), &fresh.relay_id, &key(3), "cleo").await?;
    for (id, heads) in [record, thread].into_iter().zip(heads) {
        cleo.open(id, Automerge::new().with_actor(actor_of(&key(3), 1)));
        cleo.wait_until(|s| {
            let mut have: Vec<String> = s
                .doc(id)
                .get_heads()
                .iter()
                .map(ToString::to_string)
                .collect();
            have.sort();
            !heads.is_empty() && have == heads
        })
        .await
        .with_context(|| format!("{id} arrives whole"))?;
    }
    ensure!(
        cleo.with(|s| s.doc(record).get(ROOT, "email").ok().flatten().is_some()),
        "Bob's change came along"
    );
    // Ann is not a member here: the relay knows nothing it shows her.
    let stranger = TestPeer::connect_as(&fresh.url(), &fresh.relay_id, &key(1), "ann").await?;
    stranger.open(record, Automerge::new());
    stranger
        .wait_until(|s| s.unavailable.contains(&record))
        .await?;
    // The thread is listed as the record's thread.
    let config = fresh.client_config();
    let entries = tokio::task::spawn_blocking(move || {
        RelayApi::new(&config, Identity::in_memory(key(3)))?.document_entries(&ws)
    })
    .await??;
    let listed = entries
        .iter()
        .find(|e| e.id == thread)
        .context("the thread is listed")?;
    ensure!(listed.thread_of == Some(record), "{entries:?}");
    cleo.close().await;
    stranger.close().await;
    Ok(())
}

#[test]
fn what_is_not_an_export_is_refused_and_nothing_is_written() {
    let junk = TempDir::new("import-junk");
    std::fs::create_dir_all(junk.path()).unwrap();
    std::fs::write(
        junk.path().join("manifest.json"),
        b"{\"format\": \"something\"}",
    )
    .unwrap();
    let data = TempDir::new("import-junk-relay");
    let refused = import(data.path(), junk.path(), public(&key(3)), "Acme", None);
    assert!(
        matches!(refused, Err(ImportError::NotAnExport { .. })),
        "{refused:?}"
    );
    let missing = import(
        data.path(),
        &junk.path().join("nowhere"),
        public(&key(3)),
        "Acme",
        None,
    );
    assert!(
        matches!(missing, Err(ImportError::Read { .. })),
        "{missing:?}"
    );
    assert!(
        !data.path().join("relay.redb").exists(),
        "nothing was written"
    );
}
