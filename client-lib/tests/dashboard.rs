//! The dashboard of a real replica: customers and tasks written as records,
//! read back through the index, figures checked against ones worked out by
//! hand.

use std::path::PathBuf;

use rapport_client::Repo;
use rapport_client::dashboard::{self, Csat, Dashboard, FEEDBACK_TAG, Options};
use rapport_client::index::{CSAT_FIELD, IndexEntry};
use rapport_model::{Customer, Date, Relationship, Stage, Status, Task};
use rapport_protocol::ids::{DocumentId, PublicKey};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A fresh home folder, removed at the end.
struct Home(PathBuf);

impl Home {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rapport-client-dashboard-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn date(text: &str) -> Date {
    text.parse().expect("test dates are valid")
}

fn customer(repo: &Repo, name: &str, stage: Stage, score: i64, last: Option<&str>) -> Result {
    let mut record = Customer::new(name, Relationship::Client);
    record.stage = stage;
    record.score = score;
    record.last_contact = last.map(date);
    repo.create(|tx| record.write(tx))?;
    Ok(())
}

fn task(
    repo: &Repo,
    title: &str,
    status: Status,
    due: Option<&str>,
    who: &[&PublicKey],
) -> Result<DocumentId> {
    let mut record = Task::new(title);
    record.status = status;
    record.due = due.map(date);
    for person in who {
        record.assign(person);
    }
    Ok(repo.create(|tx| record.write(tx))?.0)
}

fn feedback(repo: &Repo, score: &str) -> Result {
    let mut record = Task::new("Feedback");
    record.status = Status::Done;
    record.tags.push(FEEDBACK_TAG.into());
    record.fields.insert(CSAT_FIELD.into(), score.into());
    repo.create(|tx| record.write(tx))?;
    Ok(())
}

/// The replica every test here uses; see the figures in `seeded_figures`.
fn seed(repo: &Repo, bob: &PublicKey) -> Result {
    let ann = &repo.public_key();
    customer(repo, "Acme", Stage::Proposal, 80, Some("2025-03-01"))?;
    customer(repo, "Bolt", Stage::Proposal, 45, Some("2025-01-15"))?;
    customer(repo, "Cato", Stage::Lead, 10, None)?;
    customer(repo, "Dyna", Stage::Won, 95, Some("2025-02-08"))?;
    customer(repo, "Echo", Stage::Lost, 5, None)?;
    task(repo, "Send offer", Status::Open, Some("2025-03-05"), &[ann])?;
    task(
        repo,
        "Draft contract",
        Status::InProgress,
        Some("2025-03-20"),
        &[ann, bob],
    )?;
    task(repo, "Invoice", Status::Done, Some("2025-02-01"), &[bob])?;
    task(
        repo,
        "Chase payment",
        Status::Blocked,
        Some("2025-02-28"),
        &[bob],
    )?;
    task(repo, "Plan kickoff", Status::Open, None, &[])?;
    for score in ["5", "4", "3", "n/a"] {
        feedback(repo, score)?;
    }
    Ok(())
}

fn options() -> Options {
    Options {
        today: date("2025-03-10"),
        stale_days: 30,
    }
}

/// The figures of `seed` on 2025-03-10 with 30 stale days, by hand.
fn check(figures: &Dashboard, ann: &PublicKey, bob: &PublicKey) {
    let stages: Vec<(&str, u64, i64)> = figures
        .pipeline
        .iter()
        .map(|s| (s.stage.as_str(), s.customers, s.score))
        .collect();
    // proposal: Acme 80 + Bolt 45 = 125; lead: Cato 10; won: Dyna 95;
    // lost: Echo 5.
    assert_eq!(
        stages,
        [
            ("lead", 1, 10),
            ("prospect", 0, 0),
            ("proposal", 2, 125),
            ("won", 1, 95),
            ("lost", 1, 5),
            ("active", 0, 0),
            ("churned", 0, 0),
        ]
    );

    // Open: Send offer (ann, due 03-05: 5 days late), Draft contract (ann
    // and bob, due later), Chase payment (bob, blocked, due 02-28: 10 days
    // late), Plan kickoff (nobody). Invoice and the feedback are done.
    let (ann, bob) = (ann.to_string(), bob.to_string());
    let mut expected = vec![(Some(ann.as_str()), 2, 1), (Some(bob.as_str()), 2, 1)];
    expected.sort();
    expected.push((None, 1, 0));
    let workload: Vec<(Option<&str>, u64, u64)> = figures
        .workload
        .iter()
        .map(|w| (w.assignee.as_deref(), w.open, w.overdue))
        .collect();
    assert_eq!(workload, expected);
    let overdue: Vec<(&str, &str, i64)> = figures
        .overdue
        .iter()
        .map(|t| (t.title.as_str(), t.due.as_str(), t.days_overdue))
        .collect();
    assert_eq!(
        overdue,
        [
            ("Chase payment", "2025-02-28", 10),
            ("Send offer", "2025-03-05", 5)
        ]
    );

    // Cato never (first); Bolt on 01-15: 16 days of January + 28 of
    // February + 10 of March = 54. Acme (9 days) and Dyna (exactly 30) are
    // recent enough; Echo is lost.
    let stale: Vec<(&str, Option<i64>)> = figures
        .not_contacted
        .customers
        .iter()
        .map(|c| (c.name.as_str(), c.days_since))
        .collect();
    assert_eq!(stale, [("Cato", None), ("Bolt", Some(54))]);

    // Scores 5, 4 and 3: 12 / 3 = 4.0; "n/a" is unscored.
    assert_eq!(
        figures.csat,
        Csat {
            responses: 3,
            sum: 12,
            average: Some(4.0),
            unscored: 1
        }
    );
}

#[test]
fn seeded_figures() -> Result {
    let home = Home::new("seeded");
    let repo = Repo::init(&home.0)?;
    let bob = PublicKey::from_bytes([2; 32]);
    seed(&repo, &bob)?;
    let figures = dashboard::compute(&dashboard::index(&repo)?, &options());
    check(&figures, &repo.public_key(), &bob);
    Ok(())
}

#[test]
fn an_index_from_an_earlier_version_is_rebuilt_first() -> Result {
    let home = Home::new("older");
    let repo = Repo::init(&home.0)?;
    let bob = PublicKey::from_bytes([2; 32]);
    seed(&repo, &bob)?;
    // Store every entry as the version before feedback scores wrote it.
    let older: Vec<(DocumentId, Vec<u8>)> = repo
        .index()?
        .into_iter()
        .map(|(id, entry)| {
            let mut json = serde_json::to_value(&entry)?;
            let object = json.as_object_mut().ok_or("an entry is an object")?;
            object.remove("csat");
            object.remove("version");
            Ok((id, serde_json::to_vec(&json)?))
        })
        .collect::<Result<_>>()?;
    repo.store().replace_index(&older)?;
    let stale: Vec<IndexEntry> = repo.index()?.into_iter().map(|(_, e)| e).collect();
    assert!(stale.iter().all(|e| !e.is_current() && e.csat.is_none()));
    // Computed from the old entries, CSAT would see no scores at all.
    let wrong = dashboard::compute(&repo.index()?, &options());
    assert_eq!(wrong.csat.responses, 0);

    let figures = dashboard::compute(&dashboard::index(&repo)?, &options());
    check(&figures, &repo.public_key(), &bob);
    assert!(repo.index()?.iter().all(|(_, e)| e.is_current()));
    Ok(())
}
