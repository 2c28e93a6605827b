//! Backups of a relay that keeps serving: a copy taken in the middle of a
//! burst of writes holds every change acknowledged before it began, and
//! restores into a relay that serves them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use rapport_protocol::ids::DocumentId;
use rapport_server::storage::Store;
use rapport_server::storage::backup::{BackupError, restore};
use rapport_tests::peer::{PATIENCE, TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, TestRelay};

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_mid_burst_holds_every_change_acknowledged_before_it_began() -> Result<()> {
    let dir = TempDir::new("backup-relay");
    let relay = Arc::new(TestRelay::start(dir.path()).await?);
    let writer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(1), "writer").await?;
    let id = DocumentId::from_bytes([40; 16]);
    writer.open(id, Automerge::new().with_actor(actor_of(&key(1), 1)));

    // The burst: each change, once the relay counts it stored (durable,
    // and so acknowledged), joins `acknowledged`.
    const BURST: usize = 400;
    let acknowledged: Arc<Mutex<Vec<ChangeHash>>> = Arc::default();
    let burst = {
        let acknowledged = Arc::clone(&acknowledged);
        let relay = Arc::clone(&relay);
        async move {
            for n in 0..BURST {
                writer.change(id, |tx| tx.put(ROOT, "n", n as i64))?;
                let hash = writer.with(|s| s.doc(id).get_heads())[0];
                let deadline = tokio::time::Instant::now() + PATIENCE;
                while relay.metric("rapport_changes_stored_total").await? < n as u64 + 1 {
                    ensure!(
                        tokio::time::Instant::now() < deadline,
                        "change {n} never stored"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                acknowledged.lock().unwrap().push(hash);
            }
            anyhow::Ok(())
        }
    };
    let burst = tokio::spawn(burst);
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = acknowledged.lock().unwrap().clone();
    let backups = TempDir::new("backup-files");
    std::fs::create_dir_all(backups.path())?;
    let to = backups.path().join("relay.backup");
    let data = dir.path().to_owned();
    let copy = to.clone();
    let bytes = tokio::task::spawn_blocking(move || rapport_server::control::backup(&data, &copy))
        .await??;
    let after = acknowledged.lock().unwrap().len();
    burst.await??;
    ensure!(
        after < BURST,
        "the burst ended before the backup did; it proves nothing about a busy relay"
    );
    ensure!(bytes > 0 && to.exists(), "no backup written");
    ensure!(
        std::fs::read_dir(backups.path())?.count() == 1,
        "something besides the backup was left"
    );

    // Restored into a new folder: every change acknowledged before the
    // backup began is there.
    let restored = TempDir::new("backup-restored");
    restore(&to, restored.path(), false)?;
    let store = Store::open(restored.path())?;
    let doc = store.load_automerge(id)?;
    for (n, hash) in before.iter().enumerate() {
        ensure!(
            doc.get_change_by_hash(hash).is_some(),
            "change {n}, acknowledged before the backup began, is missing"
        );
    }
    drop(store);
    // And a relay serves it.
    let serving = TestRelay::start(restored.path()).await?;
    let reader = TestPeer::connect_as(&serving.url(), &serving.relay_id, &key(1), "reader").await?;
    reader.open(id, Automerge::new());
    let last = *before.last().context("changes before the backup")?;
    reader
        .wait_until(|s| s.doc(id).get_change_by_hash(&last).is_some())
        .await?;
    ensure!(
        serving.relay_id == relay.relay_id,
        "the restored relay has another id"
    );
    Ok(())
}

#[test]
fn restore_refuses_what_is_not_a_backup_and_a_folder_in_use() -> Result<()> {
    let dir = TempDir::new("restore-refusals");
    std::fs::create_dir_all(dir.path())?;
    let junk = dir.path().join("junk.backup");
    std::fs::write(&junk, b"not a database")?;
    let target = TempDir::new("restore-target");
    let refused = restore(&junk, target.path(), false);
    ensure!(
        matches!(refused, Err(BackupError::NotABackup { .. })),
        "{refused:?}"
    );
    ensure!(
        !target.path().join("relay.redb").exists(),
        "a refused restore left a database"
    );
    // A folder holding a database needs --force.
    let held = Store::open(target.path())?;
    held.relay_id(|| "relay-1".into())?;
    let backup = dir.path().join("good.backup");
    held.backup_to(&backup)?;
    let refused = restore(&backup, target.path(), true);
    ensure!(
        matches!(refused, Err(BackupError::Running { .. })),
        "restored under an open database: {refused:?}"
    );
    drop(held);
    let refused = restore(&backup, target.path(), false);
    ensure!(
        matches!(refused, Err(BackupError::Occupied { .. })),
        "{refused:?}"
    );
    restore(&backup, target.path(), true)?;
    ensure!(
        Store::open(target.path())?.relay_id_if_any()? == Some("relay-1".into()),
        "the restored relay id"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_exports_a_workspace_while_the_relay_serves_and_after() -> Result<()> {
    use rapport_client::Repo;
    use rapport_client::api::RelayApi;
    use rapport_model::{Customer, Relationship};
    let dir = TempDir::new("export-relay");
    let mut relay = TestRelay::start(dir.path()).await?;
    let home = TempDir::new("export-owner");
    let owner = Repo::init(home.path())?;
    let config = relay.client_config();
    let api = RelayApi::new(&config, owner.identity().clone())?;
    let ws = tokio::task::block_in_place(|| api.create_workspace("Acme"))?;
    let (acme, ()) =
        owner.create(|tx| Customer::new("Acme Ltd", Relationship::Client).write(tx))?;
    tokio::task::block_in_place(|| api.add_documents(&ws, &[(acme, None)]))?;
    owner.sync_once(&config, PATIENCE, |_| {}).await?;

    let out = TempDir::new("export-files");
    std::fs::create_dir_all(out.path())?;
    let export = |to: std::path::PathBuf, workspace: String| {
        let data = dir.path().to_owned();
        tokio::task::spawn_blocking(move || rapport_server::control::export(&data, &workspace, &to))
    };
    // While it serves: the relay writes it.
    let serving = out.path().join("serving");
    let count = export(serving.clone(), ws.clone()).await??;
    // The workspace's documents: the customer and the automations document.
    ensure!(count == 2, "{count} documents exported");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(serving.join(format!("{acme}.json")))?)?;
    ensure!(json["name"] == "Acme Ltd", "{json}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(serving.join("manifest.json"))?)?;
    ensure!(manifest["workspace"] == ws.as_str(), "{manifest}");
    let refused = export(serving.clone(), ws.clone()).await?;
    ensure!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("not an empty folder")),
        "{refused:?}"
    );
    let unknown = export(out.path().join("none"), "ws-nope".into()).await?;
    ensure!(
        unknown
            .as_ref()
            .is_err_and(|e| e.to_string().contains("no workspace ws-nope")),
        "{unknown:?}"
    );
    // Stopped: read from the file, the same documents.
    relay.stop().await?;
    let stopped = out.path().join("stopped");
    ensure!(
        export(stopped.clone(), ws.clone()).await?? == 2,
        "after the stop"
    );
    ensure!(
        std::fs::read(stopped.join(format!("{acme}.automerge")))?
            == std::fs::read(serving.join(format!("{acme}.automerge")))?,
        "the same document either way"
    );
    Ok(())
}

#[test]
fn a_backup_onto_a_full_disk_fails_and_leaves_nothing_that_looks_complete() -> Result<()> {
    use automerge::transaction::Transactable as _;
    use rapport_protocol::relay::StoredChange;
    let dir = TempDir::new("backup-full");
    let store = Store::open(dir.path())?;
    let mut doc = Automerge::new().with_actor(actor_of(&key(1), 1));
    let mut tx = doc.transaction();
    tx.put(ROOT, "notes", "x".repeat(200_000))?;
    tx.commit();
    let changes: Vec<StoredChange> = doc
        .get_changes(&[])
        .iter()
        .map(StoredChange::from)
        .collect();
    store.append(DocumentId::from_bytes([41; 16]), &changes, &[])?;

    let targets = TempDir::new("backup-full-target");
    std::fs::create_dir_all(targets.path())?;
    let to = targets.path().join("relay.backup");
    let disk = rapport_tests::faults::Faults::new();
    disk.set_full(true);
    let refused = store.backup_to_on(&to, &disk.backend());
    let Err(error @ BackupError::Write { .. }) = refused else {
        anyhow::bail!("a backup onto a full disk gave {refused:?}");
    };
    ensure!(disk.failed() > 0, "the disk was never found full");
    ensure!(
        error.to_string().contains("cannot write the backup"),
        "{error}"
    );
    let left: Vec<_> = std::fs::read_dir(targets.path())?.collect();
    ensure!(left.is_empty(), "a failed backup left {left:?}");

    // With room again, the same backup is made.
    disk.set_full(false);
    let bytes = store.backup_to_on(&to, &disk.backend())?;
    ensure!(bytes > 200_000 && to.exists(), "{bytes} bytes");
    Ok(())
}
