//! A replica syncs through the stock JS sync server (no token), and a real
//! JS automerge-repo client sees its document; and the other way round.

use anyhow::Result;
use automerge::transaction::Transactable;
use automerge::{ROOT, ReadDoc};
use rapport_client::{RelayConfig, Repo};
use rapport_protocol::ids::AutomergeUrl;
use rapport_tests::js_peer::{JsPeer, JsSyncServer};
use rapport_tests::relay::TempDir;

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_and_a_js_client_share_documents_through_the_js_server() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server_dir = TempDir::new("js-server");
    let server = tokio::task::block_in_place(|| JsSyncServer::start(server_dir.path()))?;
    let relay = RelayConfig {
        url: server.url(),
        audience: None,
    };
    let home = TempDir::new("js-replica");
    let repo = Repo::init(home.path())?;
    let (id, ()) = repo.create(|tx| {
        tx.put(ROOT, "name", "Globex")?;
        tx.put(ROOT, "stage", "lead").map(|_| ())
    })?;
    repo.sync_once(&relay, std::time::Duration::from_secs(30), |_| {})
        .await?;

    let url = id.url().to_string();
    let mut js = tokio::task::block_in_place(|| JsPeer::start(&server.url()))?;
    let found = tokio::task::block_in_place(|| js.find(&url))?;
    assert_eq!(found["name"], "Globex");

    // The JS client edits; the replica gets it on its next sync.
    tokio::task::block_in_place(|| js.put(&url, &["stage"], serde_json::json!("won")))?;
    tokio::task::block_in_place(|| js.flush(std::time::Duration::from_secs(10)))?;
    repo.sync_once(&relay, std::time::Duration::from_secs(30), |_| {})
        .await?;
    // automerge 3 in JS writes a string as collaborative text.
    let stage = repo.read(id, |d| match d.get(ROOT, "stage").ok().flatten() {
        Some((automerge::Value::Object(_), obj)) => d.text(&obj).ok(),
        Some((value, _)) => value.into_string().ok(),
        None => None,
    })?;
    assert_eq!(stage.as_deref(), Some("won"));

    // A document the JS client made reaches the replica.
    let created =
        tokio::task::block_in_place(|| js.create(serde_json::json!({"title": "from JS"})))?;
    tokio::task::block_in_place(|| js.flush(std::time::Duration::from_secs(10)))?;
    let theirs = created.parse::<AutomergeUrl>()?.document_id();
    repo.want(theirs)?;
    repo.sync_once(&relay, std::time::Duration::from_secs(30), |_| {})
        .await?;
    assert!(repo.read(theirs, |d| d.get(ROOT, "title").unwrap().is_some())?);
    Ok(())
}
