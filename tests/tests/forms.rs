//! Intake forms over real sockets: a submission becomes exactly one task
//! that every staff replica receives, linked to the right customer and
//! readable by the client's typed model, whether the replica syncs later
//! or is connected at the time, and across a restart of the relay. (What
//! forms refuse is `form_refusals.rs`; the harness is
//! `rapport_tests::forms`.)

use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::Automerge;
use rapport_client::Repo;
use rapport_client::api::RelayApi;
use rapport_model::workspace::AuditEvent;
use rapport_model::{Customer, Priority, Status, Task};
use rapport_protocol::ids::DocumentId;
use rapport_tests::forms::{
    HOME, PATIENCE, World, blocking, generous, good_submission, http, support_form,
};
use rapport_tests::relay::{TempDir, TestRelay};

#[tokio::test(flavor = "multi_thread")]
async fn a_submission_becomes_one_task_that_every_staff_replica_reads() -> Result<()> {
    let world = World::new("submit", generous()).await?;
    let form = world.create_form(&support_form())?;
    assert!(form.open);
    let before = world.documents()?;

    // The definition is public, as JSON and as a plain HTML form.
    let definition = world.get(&format!("/forms/{}.json", form.id)).await?;
    assert_eq!(definition.status, 200, "{}", definition.body);
    assert_eq!(definition.json()["fields"][2]["choices"][1], "Pro");
    let page = world.get(&format!("/forms/{}", form.id)).await?;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert!(!page.body.contains("<script"));

    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let task_id: DocumentId = answer.json()["task"]
        .as_str()
        .context("the task's id")?
        .parse()?;

    // Stored and listed before the answer: exactly one more document.
    let after = world.documents()?;
    assert_eq!(after.len(), before.len() + 1);
    assert!(after.contains(&task_id));
    let submitted: Vec<AuditEvent> = world
        .events()?
        .into_iter()
        .filter(|e| e.event == "form-submitted")
        .collect();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].document, Some(task_id));

    // Every staff replica receives it on its next sync.
    for repo in [&world.owner, &world.staff] {
        repo.sync_once(&world.config, PATIENCE, |_| {}).await?;
        let tasks = World::tasks(repo)?;
        assert_eq!(tasks.len(), 1, "exactly one task: {tasks:?}");
        let (id, task) = &tasks[0];
        assert_eq!(*id, task_id);
        assert_eq!(task.title, "Support request: Bea Buyer");
        assert_eq!(task.status, Status::Open);
        assert_eq!(task.priority, Priority::High);
        assert_eq!(task.tags, ["form:support"]);
        assert_eq!(
            task.customer.as_deref(),
            Some(world.acme.to_string().as_str()),
            "linked to the customer whose email matches, not {}",
            world.globex
        );
        assert_eq!(task.fields["form"], form.id);
        assert_eq!(task.fields["email"], "Buyer@Acme.test");
        assert_eq!(task.fields["product"], "Pro");
        assert_eq!(task.fields["problem"], "The export button does nothing.");
        assert_eq!(task.fields["seats"], "12");
        assert!(task.fields["submitted_at"].ends_with('Z'));
    }

    // A staff member edits it like any task, and the owner sees the edit.
    world.staff.change(task_id, |tx| {
        Task::update(tx, |t| t.status = Status::InProgress)
    })?;
    world
        .staff
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let status = world
        .owner
        .read(task_id, |doc| Task::read(doc).map(|t| t.status))??;
    assert_eq!(status, Status::InProgress);

    // A browser's post gets a thank-you page and makes one more task; no
    // customer has this email, so it is linked to none.
    let answer = world
        .post_form(
            &form.id,
            "name=Carl+Case&email=carl%40nowhere.test&product=Basic&problem=Hi%0D%0Athere&seats=&priority=",
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("Thank you"));
    assert_eq!(world.documents()?.len(), before.len() + 2);
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let tasks = World::tasks(&world.owner)?;
    let carl = tasks
        .iter()
        .find(|(id, _)| *id != task_id)
        .map(|(_, t)| t)
        .context("the second task")?;
    assert_eq!(carl.customer, None);
    assert_eq!(carl.priority, Priority::Normal);
    assert!(
        !carl.fields.contains_key("seats"),
        "empty optional fields are left out"
    );
    let listed = blocking(|| world.owner_api.form(&world.workspace, &form.id))?;
    assert_eq!(listed.submissions, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_customer_link_follows_an_email_changed_after_the_first_submission() -> Result<()> {
    let world = World::new("relink", generous()).await?;
    let form = world.create_form(&support_form())?;
    let first = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(first.status, 201, "{}", first.body);

    // Acme's email moves to Globex: the relay's cached index must see it.
    world.owner.change(world.acme, |tx| {
        Customer::update(tx, |c| c.email = "old@acme.test".into())
    })?;
    world.owner.change(world.globex, |tx| {
        Customer::update(tx, |c| c.email = "buyer@acme.test".into())
    })?;
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let second = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(second.status, 201, "{}", second.body);
    let second: DocumentId = second.json()["task"].as_str().context("id")?.parse()?;
    world
        .staff
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let customer = world
        .staff
        .read(second, |doc| Task::read(doc).map(|t| t.customer))??;
    assert_eq!(customer, Some(world.globex.to_string()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connected_staff_replica_gets_the_task_while_connected() -> Result<()> {
    let world = World::new("live", generous()).await?;
    let form = world.create_form(&support_form())?;
    let live = world.staff.sync_live(world.config.clone());
    let mut progress = live.progress();
    tokio::time::timeout(PATIENCE, async {
        while !progress.borrow_and_update().connected {
            let _ = progress.changed().await;
        }
    })
    .await?;
    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let task: DocumentId = answer.json()["task"].as_str().context("id")?.parse()?;
    let arrived = tokio::time::timeout(PATIENCE, async {
        loop {
            let title = world
                .staff
                .read(task, |doc| Task::read(doc).map(|t| t.title).ok())
                .ok()
                .flatten();
            if let Some(title) = title {
                return title;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?;
    assert_eq!(arrived, "Support request: Bea Buyer");
    live.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_and_the_relay_identity_survive_a_restart() -> Result<()> {
    let relay_dir = TempDir::new("forms-restart-relay");
    let home = TempDir::new("forms-restart-owner");
    let mut relay = TestRelay::start_with_forms(relay_dir.path(), generous()).await?;
    let owner = Repo::init(home.path())?;
    let api = RelayApi::new(&relay.client_config(), owner.identity().clone())?;
    let workspace = blocking(|| api.create_workspace("Restarts"))?;
    let form = blocking(|| api.create_form(&workspace, &support_form()))?;
    let first = http(
        relay.addr,
        HOME,
        "POST",
        &format!("/forms/{}", form.id),
        Some("application/json"),
        serde_json::to_vec(&good_submission())?,
        false,
    )
    .await?;
    assert_eq!(first.status, 201, "{}", first.body);
    relay.restart().await?;
    let api = RelayApi::new(&relay.client_config(), owner.identity().clone())?;
    let again = blocking(|| api.form(&workspace, &form.id))?;
    assert_eq!(again.submissions, 1);
    let second = http(
        relay.addr,
        HOME,
        "POST",
        &format!("/forms/{}", form.id),
        Some("application/json"),
        serde_json::to_vec(&good_submission())?,
        false,
    )
    .await?;
    assert_eq!(second.status, 201, "{}", second.body);
    owner
        .sync_once(&relay.client_config(), PATIENCE, |_| {})
        .await?;
    // A document for each submission, and the workspace's automations
    // document, which the relay made with the workspace (before the first
    // restart) and lists in it.
    let ids = owner.document_ids()?;
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids.contains(&rapport_model::automation::document::document_id(
            &workspace
        )),
        "{ids:?}"
    );
    let authors: Vec<Vec<u8>> = ids
        .into_iter()
        .map(|id| {
            owner.read(id, |doc: &Automerge| {
                doc.get_changes(&[])
                    .first()
                    .map(|c| c.actor_id().to_bytes().to_vec())
                    .unwrap_or_default()
            })
        })
        .collect::<Result<_, _>>()?;
    assert!(
        authors.iter().all(|a| *a == authors[0]),
        "one relay actor across restarts"
    );
    if authors[0].len() <= 32 {
        bail!("the relay's actor is not self-describing");
    }
    Ok(())
}
