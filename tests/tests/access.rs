//! Workspaces, invites, comment-only clients, revocation and the audit log,
//! over real sockets.

use std::time::Duration;

use anyhow::Result;
use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use rapport_client::api::{InviteLink, InviteRequest, Level, RelayApi, Role};
use rapport_client::{RelayConfig, Repo};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::Message;
use rapport_tests::peer::TestPeer;
use rapport_tests::relay::{TempDir, TestRelay};

const PATIENCE: Duration = Duration::from_secs(30);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn sync(repo: &Repo, relay: &RelayConfig) -> Result<()> {
    repo.sync_once(relay, PATIENCE, |_| {}).await?;
    Ok(())
}

/// A relay with a workspace: an owner with a requirements document, its
/// comment thread, and one more document.
struct World {
    _dirs: Vec<TempDir>,
    relay: TestRelay,
    config: RelayConfig,
    owner: Repo,
    owner_api: RelayApi,
    workspace: String,
    requirements: DocumentId,
    thread: DocumentId,
    other: DocumentId,
}

impl World {
    async fn new() -> Result<Self> {
        let relay_dir = TempDir::new("access-relay");
        let owner_home = TempDir::new("access-owner");
        let relay = TestRelay::start(relay_dir.path()).await?;
        let config = relay.client_config();
        let owner = Repo::init(owner_home.path())?;
        let owner_api = RelayApi::new(&config, owner.identity().clone())?;
        let workspace = blocking(|| owner_api.create_workspace("Acme projects"))?;
        let (requirements, ()) = owner.create(|tx| {
            tx.put(ROOT, "kind", "requirements")?;
            let body = tx.put_object(ROOT, "body", ObjType::Text)?;
            tx.splice_text(&body, 0, 0, "Scope: portal.").map(|_| ())
        })?;
        let (thread, ()) = owner.create(|tx| {
            tx.put(ROOT, "kind", "thread")?;
            tx.put(ROOT, "record", requirements.to_string())?;
            tx.put_object(ROOT, "comments", ObjType::List).map(|_| ())
        })?;
        let (other, ()) = owner.create(|tx| tx.put(ROOT, "kind", "customer"))?;
        blocking(|| {
            owner_api.add_documents(
                &workspace,
                &[
                    (requirements, None),
                    (thread, Some(requirements)),
                    (other, None),
                ],
            )
        })?;
        sync(&owner, &config).await?;
        Ok(Self {
            _dirs: vec![relay_dir, owner_home],
            relay,
            config,
            owner,
            owner_api,
            workspace,
            requirements,
            thread,
            other,
        })
    }

    fn invite(
        &self,
        role: Role,
        documents: Vec<(DocumentId, Level)>,
        uses: u32,
        secs: u64,
    ) -> Result<InviteLink> {
        Ok(blocking(|| {
            self.owner_api.create_invite(
                &self.workspace,
                &InviteRequest {
                    role,
                    documents,
                    level: None,
                    expires_in_secs: secs,
                    uses,
                },
            )
        })?)
    }

    /// A new person who redeems `link`.
    fn join(&mut self, name: &str, link: &InviteLink) -> Result<(Repo, RelayApi)> {
        let home = TempDir::new(name);
        let repo = Repo::init(home.path())?;
        self._dirs.push(home);
        let api = RelayApi::new(&self.config, repo.identity().clone())?;
        blocking(|| api.redeem(link))?;
        Ok((repo, api))
    }

    /// A live connection of `repo`'s key with the requirements document
    /// open and received.
    async fn watch(&self, repo: &Repo, name: &str) -> Result<TestPeer> {
        let id = self.requirements;
        let live = TestPeer::connect_as(
            &self.relay.url(),
            &self.relay.relay_id,
            repo.identity().signing_key(),
            name,
        )
        .await?;
        live.open(id, Automerge::new());
        live.wait_until(|s| !s.doc(id).get_heads().is_empty())
            .await?;
        Ok(live)
    }

    /// A second after an access change, the owner writes a secret into the
    /// requirements document; whether it reaches `live`.
    async fn secret_reaches(&self, live: &TestPeer) -> Result<bool> {
        let id = self.requirements;
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.owner.change(id, |tx| {
            let (_, text) = tx.get(ROOT, "body")?.expect("body");
            tx.splice_text(&text, 0, 0, "Secret: ")
        })?;
        sync(&self.owner, &self.config).await?;
        live.settle(Duration::from_millis(500)).await;
        Ok(live.with(|s| body(s.doc(id))).contains("Secret"))
    }

    fn events(&self) -> Result<Vec<String>> {
        let events = blocking(|| self.owner_api.audit(&self.workspace, None, None))?;
        Ok(events.iter().map(|e| e.event.clone()).collect())
    }
}

/// Adds a comment to a thread document.
fn add_comment(
    tx: &mut automerge::transaction::Transaction<'_>,
    body: impl Into<String>,
) -> Result<(), automerge::AutomergeError> {
    let (_, list) = tx.get(ROOT, "comments")?.expect("threads have comments");
    let comment = tx.insert_object(&list, 0, ObjType::Map)?;
    tx.put(&comment, "body", body.into())
}

fn comment_count(doc: &Automerge) -> usize {
    match doc.get(ROOT, "comments").ok().flatten() {
        Some((_, list)) => doc.length(&list),
        None => 0,
    }
}

fn body(doc: &Automerge) -> String {
    let (_, text) = doc.get(ROOT, "body").unwrap().expect("body");
    doc.text(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_comment_only_client_reads_comments_and_cannot_change_the_record() -> Result<()> {
    let mut world = World::new().await?;
    let link = world.invite(
        Role::Client,
        vec![(world.requirements, Level::Comment)],
        1,
        3600,
    )?;
    let (client, _) = world.join("access-client", &link)?;

    // The relay tells the client what it may see; one sync fetches it.
    sync(&client, &world.config).await?;
    let (requirements, thread) = (world.requirements, world.thread);
    assert_eq!(client.read(requirements, body)?, "Scope: portal.");
    let mut ids = client.document_ids()?;
    ids.sort();
    let mut expected = vec![requirements, thread];
    expected.sort();
    assert_eq!(
        ids, expected,
        "the client sees the record and its thread, nothing else"
    );

    // A comment goes through; an edit of the record is refused.
    client.change(thread, |tx| add_comment(tx, "Can we add SSO?"))?;
    client.change(requirements, |tx| {
        let (_, text) = tx.get(ROOT, "body")?.expect("body");
        tx.splice_text(&text, 0, 0, "HACKED ")
    })?;
    sync(&client, &world.config).await?;
    let refused = client.refused_changes()?;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].reason, "read-only");
    assert_eq!(refused[0].document, requirements.to_string());

    sync(&world.owner, &world.config).await?;
    assert_eq!(
        world.owner.read(thread, comment_count)?,
        1,
        "the comment arrived"
    );
    assert_eq!(
        world.owner.read(requirements, body)?,
        "Scope: portal.",
        "the edit never did"
    );

    let events = world.events()?;
    assert!(
        events.ends_with(&[
            "invite-redeemed".into(),
            "member-added".into(),
            "change-refused".into()
        ]),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unshared_document_looks_exactly_like_a_missing_one() -> Result<()> {
    let mut world = World::new().await?;
    let link = world.invite(
        Role::Client,
        vec![(world.requirements, Level::Read)],
        1,
        3600,
    )?;
    let (client, _) = world.join("access-peek", &link)?;
    let peek = TestPeer::connect_as(
        &world.relay.url(),
        &world.relay.relay_id,
        client.identity().signing_key(),
        "peek",
    )
    .await?;
    let missing = DocumentId::from_bytes([77; 16]);
    for id in [world.other, missing] {
        peek.open(id, Automerge::new());
        peek.wait_until(|s| s.unavailable.contains(&id)).await?;
    }
    let answers = peek.with(|s| {
        s.received
            .iter()
            .filter_map(|m| match m {
                Message::Sync(d) => Some((d.document_id, "sync", d.data.clone())),
                Message::DocUnavailable(u) => Some((u.document_id, "doc-unavailable", Vec::new())),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    let of = |id: DocumentId| -> Vec<(&str, Vec<u8>)> {
        answers
            .iter()
            .filter(|(d, _, _)| *d == id)
            .map(|(_, t, b)| (*t, b.clone()))
            .collect()
    };
    assert_eq!(
        of(world.other),
        of(missing),
        "the same answer, byte for byte"
    );
    assert_eq!(of(missing).last().map(|(t, _)| *t), Some("doc-unavailable"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_used_up_revoked_and_wrong_invites_each_say_why() -> Result<()> {
    let mut world = World::new().await?;
    let once = world.invite(Role::Staff, vec![], 1, 3600)?;
    world.join("inv-first", &once)?;
    let used_up = world.join("inv-second", &once).unwrap_err().to_string();
    assert!(
        used_up.contains("used up (1 of 1 uses)") && used_up.contains("410"),
        "{used_up}"
    );

    let revoked_link = world.invite(Role::Staff, vec![], 5, 3600)?;
    let invites = blocking(|| world.owner_api.invites(&world.workspace))?;
    let id = invites
        .iter()
        .find(|i| i.uses == 0 && i.max_uses == 5)
        .map(|i| i.id.clone())
        .unwrap();
    blocking(|| world.owner_api.revoke_invite(&world.workspace, &id))?;
    let revoked = world
        .join("inv-revoked", &revoked_link)
        .unwrap_err()
        .to_string();
    assert!(revoked.contains("was revoked"), "{revoked}");

    let expiring = world.invite(Role::Staff, vec![], 5, 1)?;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let expired = world
        .join("inv-expired", &expiring)
        .unwrap_err()
        .to_string();
    assert!(expired.contains("expired"), "{expired}");

    let mut forged = once.clone();
    forged.secret = "not-the-secret".into();
    let wrong = world.join("inv-wrong", &forged).unwrap_err().to_string();
    assert!(
        wrong.contains("404") && wrong.contains("no such invite"),
        "{wrong}"
    );

    let events = world.events()?;
    let refusals: Vec<&String> = events.iter().filter(|e| *e == "invite-refused").collect();
    assert_eq!(refusals.len(), 4, "{events:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_member_is_cut_off_within_a_second_and_refused_after() -> Result<()> {
    let mut world = World::new().await?;
    let link = world.invite(Role::Staff, vec![], 1, 3600)?;
    let (staff, _) = world.join("removed-staff", &link)?;
    let key = staff.identity().signing_key().clone();
    let live =
        TestPeer::connect_as(&world.relay.url(), &world.relay.relay_id, &key, "live").await?;
    live.open(world.requirements, Automerge::new());
    live.wait_until(|s| !s.doc(world.requirements).get_heads().is_empty())
        .await?;

    let started = std::time::Instant::now();
    blocking(|| {
        world
            .owner_api
            .remove_member(&world.workspace, &staff.public_key())
    })?;
    live.wait_until(|s| s.closed.is_some()).await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cut off after {:?}",
        started.elapsed()
    );

    let again =
        TestPeer::connect_as(&world.relay.url(), &world.relay.relay_id, &key, "again").await;
    let refused = again.unwrap_err().to_string();
    assert!(refused.contains("401"), "{refused}");
    let events = world.events()?;
    let expected = [
        "workspace-created",
        "document-added",
        "document-added",
        "document-added",
        "invite-created",
        "invite-redeemed",
        "member-added",
        "member-removed",
    ];
    assert_eq!(events, expected, "one entry for each step, in order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unshared_client_stops_receiving_updates_within_a_second() -> Result<()> {
    let mut world = World::new().await?;
    let link = world.invite(
        Role::Client,
        vec![(world.requirements, Level::Read)],
        1,
        3600,
    )?;
    let (client, _) = world.join("unshared", &link)?;
    let id = world.requirements;
    let live = world.watch(&client, "watcher").await?;

    blocking(|| {
        world
            .owner_api
            .unshare(&world.workspace, id, &client.public_key())
    })?;
    assert!(!world.secret_reaches(&live).await?, "the update leaked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_edits_and_client_comments_made_offline_converge() -> Result<()> {
    let mut world = World::new().await?;
    let staff_link = world.invite(Role::Staff, vec![], 1, 3600)?;
    let client_link = world.invite(
        Role::Client,
        vec![(world.requirements, Level::Comment)],
        1,
        3600,
    )?;
    let (staff, _) = world.join("conv-staff", &staff_link)?;
    let (client, _) = world.join("conv-client", &client_link)?;
    for repo in [&staff, &client] {
        sync(repo, &world.config).await?;
    }
    let (requirements, thread) = (world.requirements, world.thread);
    // Offline: staff and owner edit the text, the client comments twice.
    staff.change(requirements, |tx| {
        let (_, text) = tx.get(ROOT, "body")?.expect("body");
        tx.splice_text(&text, 14, 0, " Timeline: Q3.")
    })?;
    world.owner.change(requirements, |tx| {
        let (_, text) = tx.get(ROOT, "body")?.expect("body");
        tx.splice_text(&text, 0, 0, "Draft. ")
    })?;
    for n in 0..2 {
        client.change(thread, |tx| add_comment(tx, format!("question {n}")))?;
    }
    world.owner.change(thread, |tx| add_comment(tx, "answer"))?;
    for _ in 0..2 {
        for repo in [&staff, &client, &world.owner] {
            sync(repo, &world.config).await?;
        }
    }
    for id in [requirements, thread] {
        let heads = world.owner.heads(id)?;
        assert_eq!(staff.heads(id)?, heads);
        assert_eq!(client.heads(id)?, heads);
    }
    assert_eq!(
        client.read(requirements, body)?,
        "Draft. Scope: portal. Timeline: Q3."
    );
    assert_eq!(staff.read(thread, comment_count)?, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_refuse_non_admins_and_log_it() -> Result<()> {
    let mut world = World::new().await?;
    let link = world.invite(Role::Staff, vec![], 1, 3600)?;
    let (_, staff_api) = world.join("not-admin", &link)?;
    let err = blocking(|| staff_api.audit(&world.workspace, None, None)).unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    let err = blocking(|| {
        staff_api.create_invite(
            &world.workspace,
            &InviteRequest {
                role: Role::Admin,
                documents: vec![],
                level: None,
                expires_in_secs: 60,
                uses: 1,
            },
        )
    })
    .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    let events = world.events()?;
    assert_eq!(
        events.iter().filter(|e| *e == "access-refused").count(),
        2,
        "{events:?}"
    );
    // Filters: by member and by document.
    let about_staff = blocking(|| {
        world
            .owner_api
            .audit(&world.workspace, Some(&staff_api_key(&world)), None)
    })?;
    assert!(!about_staff.is_empty());
    let about_doc = blocking(|| {
        world
            .owner_api
            .audit(&world.workspace, None, Some(world.thread))
    })?;
    assert_eq!(about_doc.len(), 1, "{about_doc:?}");
    Ok(())
}

fn staff_api_key(world: &World) -> rapport_protocol::ids::PublicKey {
    let members = blocking(|| world.owner_api.members(&world.workspace)).unwrap();
    members
        .iter()
        .find(|m| m.role == Role::Staff)
        .map(|m| m.key)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_staff_member_loses_sight_of_unshared_records_at_once() -> Result<()> {
    let mut world = World::new().await?;
    let link = world.invite(Role::Staff, vec![], 1, 3600)?;
    let (staff, staff_api) = world.join("demoted", &link)?;
    let id = world.requirements;
    let live = world.watch(&staff, "staff-watcher").await?;
    // Staff may not change roles; the owner keeps theirs.
    let refused =
        blocking(|| staff_api.set_role(&world.workspace, &world.owner.public_key(), Role::Client));
    assert!(
        matches!(
            refused,
            Err(rapport_client::api::ApiError::Refused { status: 403, .. })
        ),
        "{refused:?}"
    );
    let refused = blocking(|| {
        world
            .owner_api
            .set_role(&world.workspace, &world.owner.public_key(), Role::Staff)
    });
    assert!(
        matches!(
            refused,
            Err(rapport_client::api::ApiError::Refused { status: 409, .. })
        ),
        "{refused:?}"
    );

    // Demoted to client, with nothing shared: the open connection stops
    // receiving the record, and the list no longer names it.
    blocking(|| {
        world
            .owner_api
            .set_role(&world.workspace, &staff.public_key(), Role::Client)
    })?;
    assert!(
        !world.secret_reaches(&live).await?,
        "the update reached a demoted member"
    );
    let listed = blocking(|| staff_api.documents(&world.workspace))?;
    assert!(!listed.contains(&id), "still listed after the demotion");
    let audit = blocking(|| world.owner_api.audit(&world.workspace, None, None))?;
    assert!(
        audit
            .iter()
            .any(|e| e.event == "member-role-changed" && e.detail == "staff to client"),
        "the audit log"
    );
    Ok(())
}
