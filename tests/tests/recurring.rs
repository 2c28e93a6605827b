//! Recurring tasks across replicas: a weekly task finished on two replicas
//! at once, offline, has exactly one next occurrence after they sync.
//!
//! The replicas are owner and staff of one workspace, and each puts the
//! documents it makes into it (as `rapport sync` does), so every replica
//! learns of every new document: a second next task, made anywhere, would
//! reach both and be counted.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rapport_client::api::RelayApi;
use rapport_client::{RelayConfig, Repo};
use rapport_model::{ChecklistItem, Date, Kind, NextOccurrence, Status, Task, next_occurrence_id};
use rapport_protocol::ids::DocumentId;
use rapport_tests::relay::{TempDir, TestRelay, staff_invite};

const PATIENCE: Duration = Duration::from_secs(30);

async fn sync(repo: &Repo, relay: &RelayConfig) -> Result<()> {
    repo.sync_once(relay, PATIENCE, |_| {}).await?;
    Ok(())
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A relay with a workspace owned by replica `a`, where `b` is staff.
struct World {
    _dirs: [TempDir; 3],
    _relay: TestRelay,
    config: RelayConfig,
    workspace: String,
    a: (Repo, RelayApi),
    b: (Repo, RelayApi),
}

impl World {
    async fn new(name: &str) -> Result<Self> {
        let dirs = [
            TempDir::new(&format!("{name}-relay")),
            TempDir::new(&format!("{name}-a")),
            TempDir::new(&format!("{name}-b")),
        ];
        let relay = TestRelay::start(dirs[0].path()).await?;
        let config = relay.client_config();
        let a = Repo::init(dirs[1].path())?;
        let b = Repo::init(dirs[2].path())?;
        let a_api = RelayApi::new(&config, a.identity().clone())?;
        let b_api = RelayApi::new(&config, b.identity().clone())?;
        let workspace = blocking(|| a_api.create_workspace("Acme projects"))?;
        let link = blocking(|| a_api.create_invite(&workspace, &staff_invite(1)))?;
        blocking(|| b_api.redeem(&link))?;
        Ok(Self {
            _dirs: dirs,
            _relay: relay,
            config,
            workspace,
            a: (a, a_api),
            b: (b, b_api),
        })
    }

    /// Puts a document `who` made into the workspace.
    fn share(&self, who: &(Repo, RelayApi), id: DocumentId) -> Result<()> {
        Ok(blocking(|| {
            who.1.add_documents(&self.workspace, &[(id, None)])
        })?)
    }

    /// Shares the next occurrence `made` if this call created it.
    fn share_made(&self, who: &(Repo, RelayApi), made: &NextOccurrence) -> Result<()> {
        match made {
            NextOccurrence::Next {
                id, created: true, ..
            } => self.share(who, *id),
            _ => Ok(()),
        }
    }
}

fn date(text: &str) -> Date {
    text.parse().expect("a valid test date")
}

fn task(repo: &Repo, id: DocumentId) -> Result<Task> {
    Ok(repo.read(id, Task::read)??)
}

/// The tasks in `repo`'s index whose `previous` is `id`.
fn next_tasks(repo: &Repo, id: DocumentId) -> Result<Vec<(DocumentId, Task)>> {
    let mut found = Vec::new();
    for (other, entry) in repo.index()? {
        if entry.kind != Kind::Task {
            continue;
        }
        let task = task(repo, other)?;
        if task.previous == Some(id.to_string()) {
            found.push((other, task));
        }
    }
    Ok(found)
}

fn weekly_invoice(repo: &Repo) -> Task {
    let mut task = Task::new("Send the weekly invoice");
    task.repeat = Some("weekly".into());
    task.due = Some(date("2025-01-06"));
    task.tags = vec!["billing".into(), "acme".into()];
    task.assign(&repo.public_key());
    task.checklist = vec![
        ChecklistItem {
            item: "draft".into(),
            done: true,
        },
        ChecklistItem::new("send"),
    ];
    task.fields.insert("product".into(), "retainer".into());
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weekly_task_done_on_two_offline_replicas_has_one_next_task() -> Result<()> {
    let world = World::new("recurring").await?;
    let (a, b, config) = (&world.a.0, &world.b.0, &world.config);

    let original = weekly_invoice(a);
    let (weekly, ()) = a.create(|tx| original.write(tx))?;
    world.share(&world.a, weekly)?;
    sync(a, config).await?;
    sync(b, config).await?;
    assert_eq!(task(b, weekly)?, original, "B received the task");

    // Both offline, on different days: each finishes the task.
    let on_a = a.finish_task(weekly, date("2025-01-06"))?;
    let on_b = b.finish_task(weekly, date("2025-01-08"))?;
    let expected_id = next_occurrence_id(&weekly);
    for made in [&on_a, &on_b] {
        let NextOccurrence::Next { id, due, created } = made else {
            bail!("finishing a weekly task makes its next occurrence: {made:?}");
        };
        assert!(*created, "each replica made it, not knowing of the other");
        assert_eq!(*due, Some(date("2025-01-13")));
        assert_eq!(*id, expected_id);
    }

    world.share_made(&world.a, &on_a)?;
    world.share_made(&world.b, &on_b)?;
    for repo in [a, b, a, b] {
        sync(repo, config).await?;
    }

    for (name, repo) in [("a", a), ("b", b)] {
        let next = next_tasks(repo, weekly).with_context(|| format!("replica {name}"))?;
        assert_eq!(
            next.len(),
            1,
            "replica {name}: exactly one next task: {next:?}"
        );
        let (id, next) = &next[0];
        assert_eq!(*id, expected_id, "replica {name}");
        assert_eq!(next.title, "Send the weekly invoice", "replica {name}");
        assert_eq!(next.status, Status::Open, "replica {name}");
        assert_eq!(next.due, Some(date("2025-01-13")), "replica {name}");
        assert_eq!(
            next.tags,
            ["billing", "acme"],
            "replica {name}: not doubled"
        );
        assert_eq!(next.assignees, original.assignees, "replica {name}");
        let steps: Vec<(&str, bool)> = next
            .checklist
            .iter()
            .map(|step| (step.item.as_str(), step.done))
            .collect();
        assert_eq!(steps, [("draft", false), ("send", false)], "replica {name}");
        assert_eq!(next.fields, original.fields, "replica {name}");
        assert_eq!(next.repeat.as_deref(), Some("weekly"), "replica {name}");
        assert_eq!(next.series, Some(weekly.to_string()), "replica {name}");
        assert_eq!(task(repo, weekly)?.status, Status::Done, "replica {name}");
        // Exactly the tasks there should be: the original and its next.
        let tasks: BTreeSet<DocumentId> = repo
            .index()?
            .into_iter()
            .filter(|(_, entry)| entry.kind == Kind::Task)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(
            tasks,
            BTreeSet::from([weekly, expected_id]),
            "replica {name}"
        );
    }
    let heads = |repo: &Repo| -> Result<_> { Ok((repo.heads(weekly)?, repo.heads(expected_id)?)) };
    assert_eq!(heads(a)?, heads(b)?, "the replicas converged");

    // The merge really joined two creations: both actors wrote the document.
    let actors: BTreeSet<String> = a.read(expected_id, |doc| {
        doc.get_changes(&[])
            .iter()
            .map(|change| change.actor_id().to_hex_string())
            .collect()
    })?;
    let expected_actors = BTreeSet::from([
        a.identity().actor_id().to_hex_string(),
        b.identity().actor_id().to_hex_string(),
    ]);
    assert_eq!(actors, expected_actors);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_synced_the_next_task_makes_no_other() -> Result<()> {
    let world = World::new("recurring-seq").await?;
    let (a, b, config) = (&world.a.0, &world.b.0, &world.config);

    let (weekly, ()) = a.create(|tx| weekly_invoice(a).write(tx))?;
    world.share(&world.a, weekly)?;
    let made = a.finish_task(weekly, date("2025-01-06"))?;
    world.share_made(&world.a, &made)?;
    sync(a, config).await?;
    sync(b, config).await?;
    assert_eq!(task(b, weekly)?.status, Status::Done);

    let next = next_occurrence_id(&weekly);
    let again = b.finish_task(weekly, date("2025-01-09"))?;
    assert_eq!(
        again,
        NextOccurrence::Next {
            id: next,
            due: Some(date("2025-01-13")),
            created: false,
        }
    );
    sync(b, config).await?;
    sync(a, config).await?;
    for repo in [a, b] {
        assert_eq!(next_tasks(repo, weekly)?.len(), 1);
        let changes = repo.read(next, |doc| doc.get_changes(&[]).len())?;
        assert_eq!(changes, 1, "only A wrote the next occurrence");
    }
    Ok(())
}
