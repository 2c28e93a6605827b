//! The web app in headless Chromium against a relay in this process, with
//! staff as a Rust replica: who sees what, the key a page exports, bad
//! invite links, a removed client, a deleted document, and screenshots. Editing together and
//! offline are in `web_editing.rs`.
//!
//! One Chromium serves the whole file (`browser::shared`), a browser
//! context per person; each test has its own relay and workspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use automerge::Automerge;
use ed25519_dalek::SigningKey;
use rapport_client::Repo;
use rapport_client::api::{Level, RelayApi, Role};
use rapport_client::identity::KeyFile;
use rapport_protocol::ids::{DocumentId, PublicKey};
use rapport_tests::browser::world::{
    CUSTOMER, INTERNAL_TITLE, STAFF_NAME, TITLE, WAIT, WELCOME, World,
};
use rapport_tests::browser::{Join, Until, Viewport, shared};
use rapport_tests::peer::TestPeer;
use rapport_tests::relay::TempDir;
use serde_json::{Value, json};

#[test]
fn a_client_sees_the_shared_document_and_its_thread_and_nothing_else() -> Result<()> {
    let world = World::new("web-visible")?;
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Comment)?;
    let documents = format!("#/w/{}/documents", world.workspace);

    // Sam's page lists every document, each with its customer: the same
    // page would show them to the client if the relay gave them.
    world.staff_opens(&mut browser, "staff", Viewport::LAPTOP)?;
    browser.route("staff", &documents)?;
    browser.wait_for("staff", Until::Title(INTERNAL_TITLE), WAIT)?;
    browser.wait_for("staff", Until::Text(&format!("For {CUSTOMER}")), WAIT)?;
    let mut titles = browser.state("staff")?.titles;
    titles.sort();
    assert_eq!(titles, [TITLE, INTERNAL_TITLE]);

    browser.route("client", &documents)?;
    browser.wait_for("client", Until::Title(TITLE), WAIT)?;
    assert_eq!(browser.state("client")?.titles, [TITLE]);
    let mut shared_ids = vec![world.requirements.to_string(), world.thread.to_string()];
    shared_ids.sort();
    assert_eq!(
        browser.eval("client", "window.rapport.app.workspace.ids().sort()")?,
        json!(shared_ids),
        "the relay lists the document and its thread to the client, nothing else"
    );
    let text = browser.text("client")?;
    assert!(
        !text.contains(CUSTOMER),
        "the client's page names the customer:\n{text}"
    );

    // The document, its text as Sam's replica has it, and its thread.
    browser.open_doc("client", TITLE)?;
    browser.wait_for("client", Until::Comment(WELCOME), WAIT)?;
    browser.wait_for("client", Until::EditorIs(&world.expected_editor()?), WAIT)?;
    // Sam's comment, written by the Rust replica, shows Sam's name (every
    // member may ask the relay for the others' names), not a key.
    let shown = browser.state("client")?.comments;
    let welcome = shown
        .iter()
        .find(|c| c.body.contains(WELCOME))
        .context("the welcome comment")?;
    assert_eq!(welcome.author, STAFF_NAME, "{shown:?}");

    // The relay answers the client's key as if the rest did not exist.
    let file = browser.export_key("client")?;
    let me = browser.whoami("client")?;
    drop(browser);
    let (exported, key) = KeyFile::parse(&file)?;
    assert_eq!(exported.public_key, me.public_key);
    assert_eq!(exported.name, "Carla Client");
    let unseen = [world.customer, world.internal, world.tasks[0]];
    let seen = [world.requirements, world.thread];
    world.block_on(expect_access(&world, &key, &seen, &unseen))?;
    // The same question with Sam's key gets the customer: the check can fail.
    let sam = world.staff.identity().signing_key();
    world.block_on(expect_access(&world, sam, &[world.customer], &[]))
}

/// Connects with `key` and asks for every document: `seen` arrive,
/// `unseen` are answered `doc-unavailable`.
async fn expect_access(
    world: &World,
    key: &SigningKey,
    seen: &[DocumentId],
    unseen: &[DocumentId],
) -> Result<()> {
    let url = world.relay.url();
    let peer = TestPeer::connect_as(&url, &world.relay.relay_id, key, "web-probe").await?;
    for id in seen.iter().chain(unseen) {
        peer.open(*id, Automerge::new());
    }
    peer.wait_until(|s| {
        unseen.iter().all(|id| s.unavailable.contains(id))
            && seen.iter().all(|id| !s.doc(*id).get_heads().is_empty())
    })
    .await?;
    let wrongly = peer.with(|s| {
        seen.iter()
            .filter(|id| s.unavailable.contains(id))
            .copied()
            .collect::<Vec<_>>()
    });
    ensure!(wrongly.is_empty(), "answered unavailable: {wrongly:?}");
    peer.close().await;
    Ok(())
}

#[test]
fn a_key_exported_from_the_page_lists_the_same_workspace_from_a_rust_home() -> Result<()> {
    let world = World::new("web-key")?;
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Comment)?;
    let file = browser.export_key("client")?;
    drop(browser);

    let home = TempDir::new("web-key-home");
    let (_, key) = KeyFile::parse(&file)?;
    let repo = Repo::init_with_key(home.path(), key)?;
    let workspaces = RelayApi::new(&world.config, repo.identity().clone())?.workspaces()?;
    assert_eq!(workspaces.len(), 1, "{workspaces:?}");
    assert_eq!(workspaces[0].id, world.workspace);
    assert_eq!(workspaces[0].role, Role::Client);
    // A key of its own is in no workspace: the answer above is the page's key's.
    let stranger_home = TempDir::new("web-key-stranger");
    let stranger = Repo::init(stranger_home.path())?;
    let none = RelayApi::new(&world.config, stranger.identity().clone())?.workspaces()?;
    assert!(none.is_empty(), "{none:?}");

    match built_cli() {
        Some(cli) => cli_lists_the_workspace(&cli, &world, &file),
        None => {
            eprintln!("the `rapport` binary is not built next to this test: its part is skipped");
            Ok(())
        }
    }
}

/// `target/…/rapport` when `cargo test --workspace` built it beside this
/// test binary (`target/…/deps/web-…`), with `init --import`.
fn built_cli() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let cli = exe
        .parent()?
        .parent()?
        .join(format!("rapport{}", std::env::consts::EXE_SUFFIX));
    let help = Command::new(&cli).args(["init", "--help"]).output().ok()?;
    String::from_utf8_lossy(&help.stdout)
        .contains("--import")
        .then_some(cli)
}

/// `rapport init --import FILE` and `rapport workspace list --relay URL
/// --json` in a fresh home.
fn cli_lists_the_workspace(cli: &Path, world: &World, file: &str) -> Result<()> {
    let home = TempDir::new("web-key-cli");
    std::fs::create_dir_all(home.path())?;
    let key_path = home.path().join("carla.rapport-key.json");
    std::fs::write(&key_path, file)?;
    let run = |args: &[&str]| -> Result<String> {
        let out = Command::new(cli)
            .env("RAPPORT_HOME", home.path().join("home"))
            .args(args)
            .output()
            .with_context(|| format!("running rapport {args:?}"))?;
        if !out.status.success() {
            bail!(
                "rapport {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    };
    let key_arg = key_path.to_str().context("a temp path that is not UTF-8")?;
    run(&["init", "--import", key_arg])?;
    let listed: Value = serde_json::from_str(&run(&[
        "workspace",
        "list",
        "--relay",
        &world.base_url(),
        "--json",
    ])?)?;
    let ids: Vec<&str> = listed
        .as_array()
        .with_context(|| format!("workspace list --json is not a list: {listed}"))?
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert_eq!(ids, [world.workspace.as_str()], "{listed}");
    Ok(())
}

#[test]
fn a_malformed_or_revoked_invite_is_said_on_the_page() -> Result<()> {
    let world = World::new("web-bad-invite")?;
    let mut browser = shared()?;

    // A link cut off before its secret: no form, the reason instead.
    let cut = format!("{}/join#{}", world.base_url(), world.workspace);
    browser.open("cut", &cut, Viewport::LAPTOP)?;
    match browser.join("cut", "Mo Malformed")? {
        Join::BadLink(message) => assert!(message.contains("not complete"), "{message}"),
        other => bail!("a cut link answered {other:?}"),
    }
    browser.wait_for(
        "cut",
        Until::Notice("This invite link is not complete"),
        WAIT,
    )?;

    // A revoked invite: the form says so and keeps the name.
    let revoked = world.invite(Level::Comment)?;
    for invite in world.staff_api.invites(&world.workspace)? {
        world
            .staff_api
            .revoke_invite(&world.workspace, &invite.id)?;
    }
    browser.open("revoked", &revoked.to_string(), Viewport::LAPTOP)?;
    match browser.join("revoked", "Rita Revoked")? {
        Join::Refused(message) => {
            assert!(message.contains("can no longer be used"), "{message}");
            assert!(message.contains("revoked"), "{message}");
        }
        other => bail!("a revoked invite answered {other:?}"),
    }
    browser.wait_for("revoked", Until::Notice("can no longer be used"), WAIT)?;
    let kept = browser.eval(
        "revoked",
        "document.querySelector('input[name=name]').value",
    )?;
    assert_eq!(kept, json!("Rita Revoked"));

    // The same steps with an invite that stands: joined.
    world.client_joins(&mut browser, "good", "Gina Good", Level::Comment)
}

#[test]
fn a_removed_client_is_told_and_the_relay_stops_serving_them() -> Result<()> {
    let world = World::new("web-removed")?;
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Comment)?;
    let file = browser.export_key("client")?;
    let (_, key) = KeyFile::parse(&file)?;
    let me: PublicKey = browser.whoami("client")?.public_key.parse()?;
    let removed = "You were removed from this workspace";
    browser.wait_for("client", Until::Online(true), WAIT)?;
    let before = browser.state("client")?;
    assert!(
        !before.notices.iter().any(|n| n.text.contains(removed)),
        "{:?}",
        before.notices
    );

    world.staff_api.remove_member(&world.workspace, &me)?;
    browser.wait_for("client", Until::Notice(removed), WAIT)?;
    // The relay closed the page's connection and does not take it back.
    browser.wait_for("client", Until::Online(false), WAIT)?;
    let notice = browser
        .state("client")?
        .notices
        .into_iter()
        .find(|n| n.key == "removed")
        .context("no `removed` notice")?;
    assert_eq!(notice.tone, "error");
    drop(browser);

    // The document is gone for that key; Sam still has it.
    let unseen = [world.requirements, world.thread];
    world.block_on(async {
        let url = world.relay.url();
        match TestPeer::connect_as(&url, &world.relay.relay_id, &key, "removed").await {
            // Refusing the key outright also keeps the documents from it.
            Err(refused) => eprintln!("the removed key's connection was refused: {refused:#}"),
            Ok(peer) => {
                for id in unseen {
                    peer.open(id, Automerge::new());
                }
                peer.wait_until(|s| unseen.iter().all(|id| s.unavailable.contains(id)))
                    .await?;
                peer.close().await;
            }
        }
        expect_access(&world, world.staff.identity().signing_key(), &unseen, &[]).await
    })
}

/// The keys of the page's IndexedDB document store that belong to `id`.
fn stored_chunks(
    browser: &mut rapport_tests::browser::Browser,
    page: &str,
    id: &str,
) -> Result<u64> {
    let script = format!(
        r#"new Promise((resolve, reject) => {{
            const open = indexedDB.open("rapport-documents");
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {{
                const keys = open.result.transaction("documents").objectStore("documents").getAllKeys();
                keys.onerror = () => reject(keys.error);
                keys.onsuccess = () => resolve(keys.result.filter(k => k[0] === "{id}").length);
            }};
        }})"#
    );
    browser
        .eval(page, &script)?
        .as_u64()
        .context("a count of stored chunks")
}

#[test]
fn a_deleted_document_leaves_the_page_and_its_storage() -> Result<()> {
    let world = World::new("web-deleted")?;
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Comment)?;
    let documents = format!("#/w/{}/documents", world.workspace);
    browser.route("client", &documents)?;
    browser.wait_for("client", Until::Title(TITLE), WAIT)?;
    let id = world.requirements.to_string();
    let deadline = std::time::Instant::now() + WAIT;
    while stored_chunks(&mut browser, "client", &id)? == 0 {
        ensure!(
            std::time::Instant::now() < deadline,
            "the page never stored the document"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let removed =
        world
            .staff_api
            .remove_documents(&world.workspace, &[world.requirements], false)?;
    assert_eq!(removed.len(), 2, "the document and its thread: {removed:?}");
    loop {
        let ids = browser.eval("client", "window.rapport.app.workspace.ids()")?;
        let stored = stored_chunks(&mut browser, "client", &id)?;
        if !ids.to_string().contains(&id) && stored == 0 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline + WAIT,
            "the page still has the deleted document: listed {ids}, {stored} chunk(s) stored"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!browser.state("client")?.titles.contains(&TITLE.to_owned()));
    Ok(())
}

#[test]
fn screenshots_of_the_document_and_the_dashboard_on_a_phone_and_a_laptop() -> Result<()> {
    let world = World::new("web-shots")?;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&out)?;
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Comment)?;
    let client_key = browser.export_key("client")?;
    for (viewport, size) in [(Viewport::LAPTOP, "laptop"), (Viewport::PHONE, "phone")] {
        // The client's document view: a page of that size with her key.
        let page = format!("client-{size}");
        browser.open(&page, &world.base_url(), viewport)?;
        browser.import_key(&page, &client_key)?;
        browser.wait_for(&page, Until::Title(TITLE), WAIT)?;
        browser.route(&page, &world.doc_route())?;
        browser.wait_for(&page, Until::Comment(WELCOME), WAIT)?;
        browser.wait_for(&page, Until::EditorText("Timeline and deadlines"), WAIT)?;
        let shot = out.join(format!("document-client-{size}.png"));
        browser.screenshot(&page, &shot, false)?;
        assert_eq!(png_size(&shot)?, (viewport.width, viewport.height));

        // Sam's dashboard.
        let page = format!("staff-{size}");
        world.staff_opens(&mut browser, &page, viewport)?;
        let shot = out.join(format!("document-staff-{size}.png"));
        browser.screenshot(&page, &shot, false)?;
        assert_eq!(png_size(&shot)?, (viewport.width, viewport.height));
        browser.route(&page, &world.dashboard_route())?;
        browser.wait_for(&page, Until::Selector("[data-pipeline]"), WAIT)?;
        browser.wait_for(&page, Until::Text("Send the offer"), WAIT)?;
        let shot = out.join(format!("dashboard-{size}.png"));
        browser.screenshot(&page, &shot, false)?;
        assert_eq!(png_size(&shot)?, (viewport.width, viewport.height));
        // On a phone the sections scroll sideways: the current one shows.
        assert_eq!(
            browser.eval(&page, CURRENT_SECTION_SHOWN)?,
            json!(true),
            "{size}"
        );
    }
    eprintln!("screenshots in {}", out.display());

    // Sam archives the overdue task from his terminal's replica: the
    // dashboard in the browser leaves it out once it syncs.
    world
        .staff
        .change(world.tasks[0], |tx| rapport_model::set_archived(tx, true))?;
    world.sync()?;
    let page = "staff-laptop";
    let deadline = std::time::Instant::now() + WAIT;
    while browser.text(page)?.contains("Send the offer") {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the archived task is still on the dashboard"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.wait_for(page, Until::Selector("[data-pipeline]"), WAIT)?;
    Ok(())
}

/// Whether the current section's tab lies wholly inside the navigation.
const CURRENT_SECTION_SHOWN: &str = "(() => {
    const nav = document.querySelector('.nav').getBoundingClientRect()
    const tab = document.querySelector('.nav a[aria-current]').getBoundingClientRect()
    return tab.left >= nav.left && tab.right <= nav.right
})()";

/// The width and height in a PNG's header.
fn png_size(path: &Path) -> Result<(u32, u32)> {
    let bytes = std::fs::read(path)?;
    ensure!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "{} is not a PNG",
        path.display()
    );
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((word(16), word(20)))
}
