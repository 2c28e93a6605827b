//! Upgrade safety: a relay data folder and a replica home written by
//! rapport 0.1.0 are committed under `tests/golden/0.1.0/`, and this version
//! must open them and read back exactly what was written: document ids,
//! heads, field values, the relay's id, its workspace, members, invites and
//! audit log, its actor registry, and the replica's identity, index and
//! sync states.
//!
//! The committed files are never opened in place: each test copies them to
//! a temporary folder first (opening a redb file may write to it).
//!
//! `regenerate_golden_data` (ignored, and guarded by an environment
//! variable) writes them again. Regenerate only for a deliberate, documented
//! format change, and keep the old folder: the point of these files is that
//! data written by an old version still opens.
//!
//! `manifest.json` records what generation could not choose (random ids,
//! keys and heads); the field values are the constants below.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc};
use rapport_client::Repo;
use rapport_client::api::{InviteRequest, Level, RelayApi, Role};
use rapport_model::{Customer, Relationship, Stage};
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_protocol::wire::RejectReason;
use rapport_server::storage::Store;
use rapport_tests::peer::{TestPeer, key, public};
use rapport_tests::relay::{TempDir, TestRelay};
use serde_json::{Value, json};

/// The version that wrote the committed files.
const GOLDEN_VERSION: &str = "0.1.0";

const NOTE_TITLE: &str = "Golden note";
const NOTE_BODY: &str = "Hello, golden world.";
const NOTE_COUNT: i64 = 3;
const NOTE_RATIO: f64 = 0.25;
const NOTE_TAGS: [&str; 2] = ["alpha", "beta"];
const STOCK_FIELD: &str = "from a stock client";
const CUSTOMER_NAME: &str = "Acme Ltd";
const CUSTOMER_EMAIL: &str = "buyer@acme.test";
const REQUIREMENTS_TITLE: &str = "Customer portal";
const REQUIREMENTS_BODY: &str = "Scope: portal.\nTimeline: Q3.";
const WORKSPACE_NAME: &str = "Golden workspace";
/// An automerge actor as a stock automerge-repo client makes them: random
/// bytes, bound by the relay to the key that first used it (`key(5)`).
const STOCK_ACTOR: [u8; 16] = [0xab; 16];
/// How many changes the relay compacts at: the note is compacted, the
/// smaller documents are not.
const COMPACT_AT: usize = 4;

fn golden_dir() -> PathBuf {
    golden_root().join(GOLDEN_VERSION)
}

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// What the generator could not choose, as it chose it.
#[derive(Debug)]
struct Manifest {
    relay_id: String,
    owner: PublicKey,
    workspace: String,
    note: DocumentId,
    customer: DocumentId,
    requirements: DocumentId,
    heads: BTreeMap<DocumentId, Vec<String>>,
    audit_events: usize,
}

impl Manifest {
    fn load(dir: &Path) -> Result<Self> {
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
        let text = |field: &str| -> Result<String> {
            v[field]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("manifest.json has no {field}"))
        };
        let id = |name: &str| -> Result<DocumentId> {
            Ok(v["documents"][name]["id"]
                .as_str()
                .with_context(|| format!("no id for {name}"))?
                .parse()?)
        };
        let mut heads = BTreeMap::new();
        for name in ["note", "customer", "requirements"] {
            let list = v["documents"][name]["heads"]
                .as_array()
                .with_context(|| format!("no heads for {name}"))?
                .iter()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect();
            heads.insert(id(name)?, list);
        }
        Ok(Self {
            relay_id: text("relay_id")?,
            owner: text("owner")?.parse()?,
            workspace: text("workspace")?,
            note: id("note")?,
            customer: id("customer")?,
            requirements: id("requirements")?,
            heads,
            audit_events: v["audit_events"]
                .as_u64()
                .context("no audit_events")?
                .try_into()?,
        })
    }
}

fn hex_heads(doc: &Automerge) -> Vec<String> {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A working copy of the golden folder. Git keeps no file modes but the
/// executable bit, so the key file gets back the mode the client gave it.
fn working_copy(name: &str) -> Result<TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(name);
    copy_dir(&golden_dir(), dir.path())
        .with_context(|| format!("copying {}", golden_dir().display()))?;
    let key = dir
        .path()
        .join("replica")
        .join(rapport_client::identity::KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    Ok(dir)
}

fn text_of(doc: &Automerge, field: &str) -> Option<String> {
    let (_, id) = doc.get(ROOT, field).ok()??;
    doc.text(&id).ok()
}

fn scalar(doc: &Automerge, field: &str) -> Option<automerge::ScalarValue> {
    match doc.get(ROOT, field).ok()?? {
        (automerge::Value::Scalar(s), _) => Some(s.into_owned()),
        _ => None,
    }
}

/// The note exactly as written.
fn check_note(doc: &Automerge) -> Result<()> {
    ensure!(text_of(doc, "body").as_deref() == Some(NOTE_BODY), "body");
    ensure!(
        scalar(doc, "title") == Some(NOTE_TITLE.into()),
        "title: {:?}",
        scalar(doc, "title")
    );
    ensure!(scalar(doc, "count") == Some(NOTE_COUNT.into()), "count");
    ensure!(scalar(doc, "ratio") == Some(NOTE_RATIO.into()), "ratio");
    ensure!(scalar(doc, "done") == Some(true.into()), "done");
    ensure!(scalar(doc, "stock") == Some(STOCK_FIELD.into()), "stock");
    let (_, tags) = doc.get(ROOT, "tags")?.context("tags")?;
    let tags: Vec<String> = (0..doc.length(&tags))
        .filter_map(|i| {
            let (value, _) = doc.get(&tags, i).ok()??;
            value.into_string().ok()
        })
        .collect();
    ensure!(tags == NOTE_TAGS, "tags: {tags:?}");
    Ok(())
}

fn check_customer(doc: &Automerge) -> Result<()> {
    let customer = Customer::read(doc)?;
    ensure!(customer.name == CUSTOMER_NAME, "{customer:?}");
    ensure!(customer.email == CUSTOMER_EMAIL, "{customer:?}");
    ensure!(customer.stage == Stage::Proposal, "{customer:?}");
    ensure!(
        customer.relationship == Relationship::Client,
        "{customer:?}"
    );
    ensure!(customer.tags == ["vip"], "{customer:?}");
    Ok(())
}

fn check_requirements(doc: &Automerge) -> Result<()> {
    ensure!(scalar(doc, "title") == Some(REQUIREMENTS_TITLE.into()));
    ensure!(text_of(doc, "body").as_deref() == Some(REQUIREMENTS_BODY));
    Ok(())
}

fn check(m: &Manifest, id: DocumentId, doc: &Automerge) -> Result<()> {
    ensure!(hex_heads(doc) == m.heads[&id], "heads of {id}");
    if id == m.note {
        check_note(doc)
    } else if id == m.customer {
        check_customer(doc)
    } else {
        check_requirements(doc)
    }
    .with_context(|| format!("document {id}"))
}

/// A document from the relay's store, without the relay.
fn stored(store: &Store, id: DocumentId) -> Result<(Automerge, bool)> {
    let stored = store.load_document(id)?;
    let mut doc = match &stored.snapshot {
        Some(snapshot) => Automerge::load(snapshot)?,
        None => Automerge::new(),
    };
    for change in &stored.changes {
        doc.load_incremental(&change.bytes)?;
    }
    Ok((doc, stored.snapshot.is_some()))
}

#[test]
fn the_golden_relay_store_reads_back_exactly() -> Result<()> {
    let copy = working_copy("golden-store")?;
    let m = Manifest::load(copy.path())?;
    let store = Store::open(&copy.path().join("relay"))?;
    let relay_id = store.relay_id(|| "a new relay id".to_owned())?;
    ensure!(relay_id == m.relay_id, "the relay id changed: {relay_id}");
    let mut snapshots = 0;
    for id in [m.note, m.customer, m.requirements] {
        let (doc, compacted) = stored(&store, id)?;
        check(&m, id, &doc)?;
        snapshots += usize::from(compacted);
    }
    ensure!(snapshots == 1, "the note alone was compacted: {snapshots}");
    ensure!(
        store.actor_key(&STOCK_ACTOR)? == Some(public(&key(5))),
        "the stock actor is bound to key 5"
    );
    let workspaces = store.workspaces()?;
    ensure!(workspaces.len() == 1, "{} workspaces", workspaces.len());
    let audit = store.audit(&m.workspace)?;
    ensure!(
        audit.len() == m.audit_events,
        "{} audit events, {} written",
        audit.len(),
        m.audit_events
    );
    Ok(())
}

#[test]
fn the_golden_replica_reads_back_exactly() -> Result<()> {
    let copy = working_copy("golden-replica")?;
    let m = Manifest::load(copy.path())?;
    let repo = Repo::open(&copy.path().join("replica"))?;
    ensure!(repo.public_key() == m.owner, "the identity changed");
    let mut ids = repo.document_ids()?;
    ids.sort();
    let mut expected = vec![m.note, m.customer, m.requirements];
    expected.sort();
    ensure!(ids == expected, "{ids:?}");
    for id in expected {
        repo.read(id, |doc| check(&m, id, doc))??;
    }
    let index: BTreeMap<DocumentId, String> = repo
        .index()?
        .into_iter()
        .map(|(id, entry)| (id, entry.title))
        .collect();
    ensure!(
        index.get(&m.customer).map(String::as_str) == Some(CUSTOMER_NAME),
        "the index: {index:?}"
    );
    ensure!(repo.refused_changes()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_relay_serves_the_golden_replica() -> Result<()> {
    let copy = working_copy("golden-serve")?;
    let m = Manifest::load(copy.path())?;
    let relay = TestRelay::start(&copy.path().join("relay")).await?;
    ensure!(relay.relay_id == m.relay_id);
    let config = relay.client_config();
    let repo = Repo::open(&copy.path().join("replica"))?;

    // The workspace, its members, documents and invites, through the API.
    let api = RelayApi::new(&config, repo.identity().clone())?;
    let (workspaces, mut documents, members, invites) = tokio::task::block_in_place(|| {
        anyhow::Ok((
            api.workspaces()?,
            api.documents(&m.workspace)?,
            api.members(&m.workspace)?,
            api.invites(&m.workspace)?,
        ))
    })?;
    ensure!(
        workspaces.iter().any(|w| w.name == WORKSPACE_NAME),
        "{workspaces:?}"
    );
    // The golden workspace was made by 0.1.0, before every workspace had an
    // automations document: the relay made one and listed it at start
    // (`adopt_rules_documents`), so it is listed beside what 0.1.0 listed.
    documents.sort();
    let rules = rapport_model::automation::document::document_id(&m.workspace);
    let mut expected = vec![m.customer, m.requirements, rules];
    expected.sort();
    ensure!(documents == expected, "{documents:?}");
    ensure!(
        members.len() == 1
            && members[0].key.to_string() == m.owner.to_string()
            && members[0].role == rapport_model::Role::Owner,
        "{members:?}"
    );
    ensure!(
        invites.len() == 1 && invites[0].uses == 0 && invites[0].max_uses == 2,
        "{invites:?}"
    );

    // The replica syncs with it and nothing changes on either side.
    repo.sync_once(&config, rapport_tests::peer::PATIENCE, |_| {})
        .await?;
    for id in [m.note, m.customer, m.requirements] {
        repo.read(id, |doc| check(&m, id, doc))??;
    }

    // The note is in no workspace. 0.1.0 let every key read it; this
    // version claimed it at start for the key of its first change, the
    // owner's (key 5's stock actor wrote to it later): a newcomer is told it
    // is unavailable.
    let outsider = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(6), "outsider").await?;
    outsider.open(m.note, Automerge::new());
    outsider
        .wait_until(|s| s.unavailable.contains(&m.note))
        .await?;
    ensure!(
        outsider.with(|s| s.doc(m.note).get_heads().is_empty()),
        "the claimed note reached an outsider"
    );

    // The owner shares it as people now must: a workspace whose staff are
    // key 5 (a co-author, so the note may be listed), the newcomer and the
    // forger below. The newcomer gets the note as written.
    relay
        .share(
            repo.identity().signing_key(),
            &[&key(5), &key(6), &key(7)],
            &[m.note],
        )
        .await?;
    let newcomer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(6), "newcomer").await?;
    newcomer.open(m.note, Automerge::new());
    newcomer
        .wait_until(|s| hex_heads(s.doc(m.note)) == m.heads[&m.note])
        .await?;
    newcomer.with(|s| check_note(s.doc(m.note)))?;

    // The stored actor registry still binds the stock actor to key 5: key 7
    // may write the note, but not as key 5's actor.
    let forger = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(7), "forger").await?;
    forger.open(
        m.note,
        Automerge::new().with_actor(ActorId::from(STOCK_ACTOR.to_vec())),
    );
    forger
        .wait_until(|s| hex_heads(s.doc(m.note)) == m.heads[&m.note])
        .await?;
    forger.change(m.note, |tx| tx.put(ROOT, "stock", "forged"))?;
    forger.wait_until(|s| !s.rejected.is_empty()).await?;
    let reason = forger.with(|s| s.rejected[0].reason.clone());
    ensure!(reason == RejectReason::ActorOfAnotherKey, "{reason:?}");
    Ok(())
}

/// Writes `tests/golden/<this crate's version>/`. Only for a deliberate,
/// documented format change, into a new folder beside the old ones (which
/// stay, with their tests); `RAPPORT_REGENERATE_GOLDEN=overwrite` replaces an
/// existing folder, which defeats the purpose unless that version was never
/// released:
///
/// ```text
/// RAPPORT_REGENERATE_GOLDEN=1 cargo test -p rapport-tests --test golden -- --ignored regenerate
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the committed golden files; only for a deliberate format change"]
async fn regenerate_golden_data() -> Result<()> {
    let out = golden_root().join(env!("CARGO_PKG_VERSION"));
    let Ok(mode) = std::env::var("RAPPORT_REGENERATE_GOLDEN") else {
        println!("set RAPPORT_REGENERATE_GOLDEN=1 to write {}", out.display());
        return Ok(());
    };
    ensure!(
        !out.exists() || mode == "overwrite",
        "{} exists; golden data of a released version is never rewritten",
        out.display()
    );
    let work = TempDir::new("golden-generate");
    let relay_dir = work.path().join("relay");
    let home = work.path().join("replica");
    let mut config = rapport_server::Config::new(&relay_dir);
    config.compact_after_changes = COMPACT_AT;
    let mut relay = TestRelay::start_config(config).await?;
    let relay_config = relay.client_config();
    let repo = Repo::init(&home)?;

    let (note, ()) = repo.create(|tx| {
        tx.put(ROOT, "title", NOTE_TITLE)?;
        let body = tx.put_object(ROOT, "body", ObjType::Text)?;
        tx.splice_text(&body, 0, 0, NOTE_BODY)?;
        tx.put(ROOT, "count", NOTE_COUNT)?;
        let tags = tx.put_object(ROOT, "tags", ObjType::List)?;
        for (i, tag) in NOTE_TAGS.into_iter().enumerate() {
            tx.insert(&tags, i, tag)?;
        }
        anyhow::Ok(())
    })?;
    repo.change(note, |tx| tx.put(ROOT, "ratio", NOTE_RATIO))?;
    repo.change(note, |tx| tx.put(ROOT, "done", true))?;
    let (customer, ()) = repo.create(|tx| {
        let mut c = Customer::new(CUSTOMER_NAME, Relationship::Client);
        c.email = CUSTOMER_EMAIL.into();
        c.stage = Stage::Proposal;
        c.tags = vec!["vip".into()];
        c.write(tx)
    })?;
    let (requirements, ()) = repo.create(|tx| {
        tx.put(ROOT, "title", REQUIREMENTS_TITLE)?;
        let body = tx.put_object(ROOT, "body", ObjType::Text)?;
        tx.splice_text(&body, 0, 0, REQUIREMENTS_BODY).map(|_| ())
    })?;
    // The replica keeps the note as a snapshot, the others as changes.
    let snapshot = repo.read(note, Automerge::save)?;
    repo.store().compact(note, &snapshot)?;

    let api = RelayApi::new(&relay_config, repo.identity().clone())?;
    let workspace = tokio::task::block_in_place(|| -> Result<String> {
        let workspace = api.create_workspace(WORKSPACE_NAME)?;
        api.add_documents(&workspace, &[(customer, None), (requirements, None)])?;
        api.create_invite(
            &workspace,
            &InviteRequest {
                role: Role::Client,
                documents: vec![(requirements, Level::Comment)],
                level: None,
                expires_in_secs: 10 * 365 * 24 * 3600,
                uses: 2,
            },
        )?;
        Ok(workspace)
    })?;
    repo.sync_once(&relay_config, rapport_tests::peer::PATIENCE, |_| {})
        .await?;

    // A stock client's actor writes to the note: the relay binds it to key 5.
    let stock = TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(5), "stock").await?;
    stock.open(
        note,
        Automerge::new().with_actor(ActorId::from(STOCK_ACTOR.to_vec())),
    );
    let heads = repo.heads(note)?;
    stock
        .wait_until(|s| s.doc(note).get_heads() == heads)
        .await?;
    stock.change(note, |tx| tx.put(ROOT, "stock", STOCK_FIELD))?;
    let heads = stock.with(|s| s.doc(note).get_heads());
    stock.close().await;
    repo.sync_once(&relay_config, rapport_tests::peer::PATIENCE, |_| {})
        .await?;
    ensure!(repo.heads(note)? == heads, "the replica has the stock edit");
    relay.stop().await?;
    let audit_events = Store::open(&relay_dir)?.audit(&workspace)?.len();

    let mut docs = serde_json::Map::new();
    for (name, id) in [
        ("note", note),
        ("customer", customer),
        ("requirements", requirements),
    ] {
        let heads = repo.read(id, hex_heads)?;
        docs.insert(name.into(), json!({ "id": id.to_string(), "heads": heads }));
    }
    let manifest = json!({
        "written_by": format!("rapport {}", env!("CARGO_PKG_VERSION")),
        "relay_id": relay.relay_id,
        "owner": repo.public_key().to_string(),
        "workspace": workspace,
        "audit_events": audit_events,
        "documents": docs,
    });
    drop(repo);

    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("relay"))?;
    std::fs::create_dir_all(out.join("replica"))?;
    std::fs::copy(
        relay_dir.join(rapport_server::storage::DATABASE_FILE),
        out.join("relay")
            .join(rapport_server::storage::DATABASE_FILE),
    )?;
    for file in [
        rapport_client::store::DATABASE_FILE,
        rapport_client::identity::KEY_FILE,
        rapport_client::identity::DEVICE_FILE,
    ] {
        std::fs::copy(home.join(file), out.join("replica").join(file))?;
    }
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
