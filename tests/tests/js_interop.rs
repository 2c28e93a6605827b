//! Real `@automerge/automerge-repo` 2.5.6 clients (node, `tests/js/peer.mjs`)
//! against rapport-server: JS peers sync with each other and with Rust peers
//! through the relay, in token mode (`?token=…`, as browsers must send it)
//! and in `--open` mode, are refused without a token, are told a missing
//! document is unavailable, and find what they wrote after a relay restart.
//!
//! In token mode peers of different keys share documents as staff of a
//! workspace that lists them ([`rapport_tests::relay::share`]): a document a
//! JS peer creates (under a random id) is listed by its author right after
//! it is created, one a test names is listed before anyone writes it.
//!
//! The JS peer API is blocking (it waits on a child process), so every call
//! runs inside [`js`] (`block_in_place`) on a multi-threaded runtime, while
//! the relay and the Rust peers keep running on the runtime's workers.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use rapport_protocol::ids::{AutomergeUrl, DocumentId};
use rapport_server::{AuthMode, Limits};
use rapport_tests::js_peer::{DocState, JsPeer};
use rapport_tests::peer::{PeerState, TestPeer, actor_of, key, mint_token};
use rapport_tests::relay::{TempDir, TestRelay, share};
use serde_json::{Value, json};

/// How long a JS peer waits for something that should happen. Generous:
/// several node processes and relays share a small machine during tests.
const WAIT: Duration = Duration::from_secs(30);

/// Runs blocking JS peer calls without stalling the runtime's workers.
fn js<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The relay's WebSocket URL with a fresh token for key `seed` in the query
/// string, as a browser connects.
fn token_url(relay: &TestRelay, seed: u8) -> String {
    let token = mint_token(&key(seed), &relay.relay_id);
    format!("{}?token={token}", relay.url())
}

async fn rust_peer(relay: &TestRelay, seed: u8, name: &str) -> Result<TestPeer> {
    TestPeer::connect_as(&relay.url(), &relay.relay_id, &key(seed), name).await
}

/// The document id of a JS `automerge:` URL.
fn document_id(url: &str) -> Result<DocumentId> {
    Ok(url
        .parse::<AutomergeUrl>()
        .with_context(|| format!("parsing {url}"))?
        .document_id())
}

fn sorted(mut heads: Vec<String>) -> Vec<String> {
    heads.sort();
    heads
}

/// The document's heads as the JS peer prints them: hex, sorted.
fn hex_heads(doc: &Automerge) -> Vec<String> {
    sorted(doc.get_heads().iter().map(ToString::to_string).collect())
}

/// The content of a text field at the root (JS strings are text objects).
fn text_of(doc: &Automerge, field: &str) -> Option<String> {
    let (_, id) = doc.get(ROOT, field).ok()??;
    doc.text(&id).ok()
}

/// A scalar string at the root, as a Rust peer puts it.
fn str_of(doc: &Automerge, field: &str) -> Option<String> {
    let (value, _) = doc.get(ROOT, field).ok()??;
    value.as_str().map(str::to_owned)
}

/// The value of a Prometheus counter or gauge without labels.
fn metric(text: &str, name: &str) -> Result<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .with_context(|| format!("no {name} in the metrics:\n{text}"))?
        .trim()
        .parse()
        .with_context(|| format!("{name} is not an integer"))
}

/// `find` that retries while the JS peer still says "unavailable" (its
/// cached handle turns ready only when the document arrives), until [`WAIT`].
fn find_once_available(peer: &mut JsPeer, url: &str) -> Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        match peer.find_within(url, WAIT) {
            Ok(doc) => return Ok(doc),
            Err(e) if format!("{e:#}").contains("unavailable") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.context(format!("{url} never became available"))),
        }
    }
}

/// Whether the relay has answered this peer with heads equal to the peer's
/// own for `id`: the relay holds (and has stored) everything the peer has.
fn relay_has_all(state: &PeerState, id: DocumentId) -> bool {
    let Some(sync) = state.docs.get(&id) else {
        return false;
    };
    let ours = sync.doc().get_heads();
    !ours.is_empty() && state.acknowledged(id, &ours)
}

/// Two JS peers make concurrent edits to a document A created, and converge
/// on the same content and heads. `share` is called with the document once
/// A has created it, before B looks for it.
fn two_js_peers_converge(
    a: &mut JsPeer,
    b: &mut JsPeer,
    share: impl FnOnce(DocumentId) -> Result<()>,
) -> Result<()> {
    let initial = json!({"customers": {}, "notes": "Kickoff"});
    let url = a.create(initial.clone())?;
    assert!(url.starts_with("automerge:"), "{url}");
    a.flush(WAIT)?;
    share(document_id(&url)?)?;
    assert_eq!(b.find_within(&url, WAIT)?, initial);

    // Both edit without waiting for each other. The splice positions hold
    // whatever B has of A's edits by then: A appends, B inserts at the front.
    a.put(&url, &["customers", "c1", "name"], json!("Acme"))?;
    a.splice(&url, &["notes"], 7, 0, " call")?;
    b.put(&url, &["customers", "c2", "name"], json!("Globex"))?;
    b.splice(&url, &["notes"], 0, 0, "Q3 ")?;

    a.wait_for(&url, &["customers", "c2", "name"], json!("Globex"), WAIT)?;
    b.wait_for(&url, &["customers", "c1", "name"], json!("Acme"), WAIT)?;
    a.wait_for(&url, &["notes"], json!("Q3 Kickoff call"), WAIT)?;
    b.wait_for(&url, &["notes"], json!("Q3 Kickoff call"), WAIT)?;
    // Each has the other's edits; both have told the relay everything.
    a.flush(WAIT)?;
    b.flush(WAIT)?;

    let (ra, rb) = (a.read(&url)?, b.read(&url)?);
    let expected = json!({
        "customers": {"c1": {"name": "Acme"}, "c2": {"name": "Globex"}},
        "notes": "Q3 Kickoff call",
    });
    assert_eq!(ra.doc, expected);
    assert_eq!(rb.doc, expected);
    // One or two heads, depending on whether B had A's edits when it made
    // its own; the same on both sides.
    assert!(!ra.heads.is_empty(), "{:?}", ra.heads);
    assert_eq!(sorted(ra.heads), sorted(rb.heads));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn js_peers_with_tokens_converge_through_the_relay() -> Result<()> {
    let dir = TempDir::new("js-token");
    let relay = TestRelay::start(dir.path()).await?;
    let (url_a, url_b) = (token_url(&relay, 1), token_url(&relay, 2));
    js(|| -> Result<()> {
        let mut a = JsPeer::start(&url_a)?;
        let mut b = JsPeer::start(&url_b)?;
        // Each is connected to the relay and to nothing else.
        let (peers_a, peers_b) = (a.peers()?, b.peers()?);
        assert_eq!(peers_a.len(), 1, "{peers_a:?}");
        assert_eq!(peers_a, peers_b);

        // A, the author, shares it with B.
        two_js_peers_converge(&mut a, &mut b, |id| {
            share(&relay.url(), &relay.relay_id, &key(1), &[&key(2)], &[id]).map(drop)
        })?;

        assert_eq!(a.errors()?, Vec::<String>::new(), "{}", a.stderr());
        assert_eq!(b.errors()?, Vec::<String>::new(), "{}", b.stderr());
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_js_document_syncs_with_a_rust_peer_both_ways() -> Result<()> {
    let dir = TempDir::new("js-rust");
    let relay = TestRelay::start(dir.path()).await?;
    let url_js = token_url(&relay, 1);
    let mut j = js(|| JsPeer::start(&url_js))?;

    let url = js(|| -> Result<String> {
        let url = j.create(json!({"title": "Spec", "notes": "Draft"}))?;
        j.flush(WAIT)?;
        Ok(url)
    })?;
    let id = document_id(&url)?;
    assert_eq!(id.url().to_string(), url);
    // The JS author shares its document with the Rust peer, and one the
    // Rust peer will create.
    let id2 = DocumentId::from_bytes(rand::random());
    relay.share(&key(1), &[&key(2)], &[id, id2]).await?;

    // A Rust peer with an empty document gets the JS content.
    let r = rust_peer(&relay, 2, "rust").await?;
    r.open(id, Automerge::new().with_actor(actor_of(&key(2), 1)));
    r.wait_until(|s| {
        text_of(s.doc(id), "title").as_deref() == Some("Spec")
            && text_of(s.doc(id), "notes").as_deref() == Some("Draft")
    })
    .await?;

    // The Rust peer's change reaches the JS peer.
    r.change(id, |tx| tx.put(ROOT, "stage", "review"))?;
    let doc = js(|| j.wait_for(&url, &["stage"], json!("review"), WAIT))?;
    assert_eq!(
        doc,
        json!({"title": "Spec", "notes": "Draft", "stage": "review"})
    );

    // The JS peer's edits reach the Rust peer.
    let js_state = js(|| -> Result<DocState> {
        j.splice(&url, &["notes"], 5, 0, " v2")?;
        j.put(&url, &["owner"], json!(7))?;
        j.read(&url)
    })?;
    r.wait_until(|s| {
        text_of(s.doc(id), "notes").as_deref() == Some("Draft v2")
            && s.doc(id)
                .get(ROOT, "owner")
                .ok()
                .flatten()
                .and_then(|(v, _)| v.as_i64())
                == Some(7)
    })
    .await?;
    // Same heads on both sides once the Rust peer has the JS edits.
    r.wait_until(|s| hex_heads(s.doc(id)) == sorted(js_state.heads.clone()))
        .await?;
    assert_eq!(
        js_state.doc,
        json!({"title": "Spec", "notes": "Draft v2", "stage": "review", "owner": 7})
    );

    // The other way round: a document the Rust peer creates, the JS peer finds.
    let mut record = Automerge::new().with_actor(actor_of(&key(2), 1));
    record
        .transact(|tx| {
            tx.put(ROOT, "name", "Acme Ltd")?;
            let notes = tx.put_object(ROOT, "notes", ObjType::Text)?;
            tx.splice_text(&notes, 0, 0, "Kick-off on Monday.")?;
            tx.put(ROOT, "score", 42_i64)
        })
        .map_err(|f| f.error)?;
    r.open(id2, record);
    r.wait_until(|s| relay_has_all(s, id2)).await?;

    let url2 = id2.url().to_string();
    let found = js(|| j.find_within(&url2, WAIT))?;
    assert_eq!(
        found,
        json!({"name": "Acme Ltd", "notes": "Kick-off on Monday.", "score": 42})
    );
    // An edit from JS comes back to the Rust author.
    js(|| j.splice(&url2, &["notes"], 0, 0, "Moved: "))?;
    r.wait_until(|s| text_of(s.doc(id2), "notes").as_deref() == Some("Moved: Kick-off on Monday."))
        .await?;
    assert!(r.with(|s| s.rejected.is_empty()), "nothing refused");
    assert_eq!(js(|| j.errors())?, Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn js_peers_without_tokens_sync_through_an_open_relay() -> Result<()> {
    let dir = TempDir::new("js-open");
    let relay = TestRelay::start_with(dir.path(), AuthMode::Open, Limits::default()).await?;
    let url = relay.url();
    js(|| -> Result<()> {
        let mut a = JsPeer::start(&url)?;
        let mut b = JsPeer::start(&url)?;
        // Nothing to share: an open relay has no workspaces.
        two_js_peers_converge(&mut a, &mut b, |_| Ok(()))?;
        assert_eq!(a.errors()?, Vec::<String>::new(), "{}", a.stderr());
        assert_eq!(b.errors()?, Vec::<String>::new(), "{}", b.stderr());
        Ok(())
    })?;

    // A token is not needed, and a valid one is harmless.
    let with_token = token_url(&relay, 3);
    js(|| -> Result<()> {
        let mut c = JsPeer::start(&with_token)?;
        let doc = c.create(json!({"n": 1}))?;
        c.flush(WAIT)?;
        let mut d = JsPeer::start(&url)?;
        assert_eq!(d.find_within(&doc, WAIT)?, json!({"n": 1}));
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_js_peer_without_a_valid_token_is_refused_with_401() -> Result<()> {
    let dir = TempDir::new("js-401");
    let relay = TestRelay::start(dir.path()).await?;
    let bare = relay.url();
    let garbage = format!("{bare}?token=not.a.jwt");
    let other_audience = format!("{bare}?token={}", mint_token(&key(1), "relay-someone-else"));
    let replayed = token_url(&relay, 2);
    js(|| -> Result<()> {
        for (what, url) in [
            ("no token", &bare),
            ("a garbage token", &garbage),
            ("a token for another relay", &other_audience),
        ] {
            let err = JsPeer::start(url).expect_err(what);
            let text = format!("{err:#}");
            assert!(text.contains("401"), "{what}: {text}");
        }
        // A token works once; its nonce cannot be replayed.
        let _first = JsPeer::start(&replayed)?;
        let err = JsPeer::start(&replayed).expect_err("a replayed token");
        let text = format!("{err:#}");
        assert!(text.contains("401"), "replayed: {text}");
        Ok(())
    })?;
    // The relay counted the refusals, and only the first use of the token
    // became a connection.
    let (status, metrics) = relay.get("/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        metric(&metrics, "rapport_auth_failures_total")? >= 4,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "rapport_connections_total")?,
        1,
        "{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_js_peer_is_told_an_unknown_document_is_unavailable() -> Result<()> {
    let dir = TempDir::new("js-unavailable");
    let relay = TestRelay::start(dir.path()).await?;
    let url_js = token_url(&relay, 1);
    let id = DocumentId::from_bytes(rand::random());
    let url = id.url().to_string();
    let mut j = js(|| JsPeer::start(&url_js))?;

    // Unavailable, as from the JS sync server, and well before the timeout.
    let err = js(|| j.find_within(&url, WAIT)).expect_err("nobody has this document");
    let text = format!("{err:#}");
    assert!(text.contains("unavailable"), "{text}");
    assert!(!text.contains("timeout"), "{text}");

    // The document appears later, made by a Rust peer, who first lists it
    // in a workspace with the JS peer (key 1) and a second one (key 3).
    relay.share(&key(2), &[&key(1), &key(3)], &[id]).await?;
    let r = rust_peer(&relay, 2, "author").await?;
    let mut doc = Automerge::new().with_actor(actor_of(&key(2), 1));
    doc.transact(|tx| tx.put(ROOT, "name", "Late Ltd"))
        .map_err(|f| f.error)?;
    r.open(id, doc);
    r.wait_until(|s| relay_has_all(s, id)).await?;

    // What the JS client does afterwards. Its handle stays "unavailable",
    // and automerge-repo 2.5.6 answers a `find` of an unavailable handle from
    // its cache without asking again. But the relay remembers who asked and
    // pushes the document when it appears, which makes the handle ready: a
    // later `find` returns it. When exactly the push lands is not observable
    // from here, so `find` is retried (while it says unavailable) until then.
    let found = js(|| find_once_available(&mut j, &url))?;
    assert_eq!(found, json!({"name": "Late Ltd"}));
    // From then on the document syncs both ways as any other.
    r.change(id, |tx| tx.put(ROOT, "stage", "won"))?;
    js(|| j.wait_for(&url, &["stage"], json!("won"), WAIT))?;
    js(|| j.put(&url, &["owner"], json!("js")))?;
    r.wait_until(|s| text_of(s.doc(id), "owner").as_deref() == Some("js"))
        .await?;

    // And a second JS peer that never asked before finds it at once.
    let url_js2 = token_url(&relay, 3);
    let found2 = js(|| -> Result<Value> { JsPeer::start(&url_js2)?.find_within(&url, WAIT) })?;
    assert_eq!(
        found2,
        json!({"name": "Late Ltd", "stage": "won", "owner": "js"})
    );
    assert_eq!(
        r.with(|s| str_of(s.doc(id), "name")).as_deref(),
        Some("Late Ltd")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_js_clients_changes_survive_a_relay_restart() -> Result<()> {
    let dir = TempDir::new("js-restart");
    let mut relay = TestRelay::start(dir.path()).await?;
    let relay_id = relay.relay_id.clone();
    let url_a = token_url(&relay, 1);
    let mut a = js(|| JsPeer::start(&url_a))?;
    let url = js(|| -> Result<String> {
        let url = a.create(json!({"customers": {}, "notes": "Kickoff"}))?;
        a.put(&url, &["customers", "c1", "name"], json!("Acme"))?;
        a.splice(&url, &["notes"], 7, 0, " call")?;
        a.put(&url, &["stage"], json!(3))?;
        a.flush(WAIT)?;
        Ok(url)
    })?;
    let written = js(|| a.read(&url))?;
    // A, its author, shares it with those who look for it after the restart.
    relay
        .share(&key(1), &[&key(2), &key(3)], &[document_id(&url)?])
        .await?;

    // A stays connected while the relay stops: a graceful shutdown with a
    // live JS client on it.
    relay.restart().await?;
    drop(a);
    assert_eq!(relay.relay_id, relay_id, "the relay id survives a restart");

    // A new peer with a token for the same relay id finds A's edits.
    let url_b = token_url(&relay, 2);
    js(|| -> Result<()> {
        let mut b = JsPeer::start(&url_b)?;
        let found = b.find_within(&url, WAIT)?;
        assert_eq!(found, written.doc);
        assert_eq!(
            found,
            json!({"customers": {"c1": {"name": "Acme"}}, "notes": "Kickoff call", "stage": 3})
        );
        assert_eq!(sorted(b.read(&url)?.heads), sorted(written.heads.clone()));
        Ok(())
    })?;

    // A Rust peer sees the same document.
    let id = document_id(&url)?;
    let r = rust_peer(&relay, 3, "after-restart").await?;
    r.open(id, Automerge::new().with_actor(actor_of(&key(3), 1)));
    r.wait_until(|s| hex_heads(s.doc(id)) == sorted(written.heads.clone()))
        .await?;
    assert_eq!(
        r.with(|s| text_of(s.doc(id), "notes")).as_deref(),
        Some("Kickoff call")
    );
    Ok(())
}
