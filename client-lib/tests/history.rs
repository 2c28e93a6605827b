//! History and restore on a real replica: each change names its author and
//! fields, and restoring writes the old value back as a new change that the
//! index and the model see.

use std::path::PathBuf;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use rapport_client::Repo;
use rapport_client::history::{self, HistoryError};
use rapport_model::{Customer, Relationship, Requirements, Stage};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A fresh home folder, removed at the end.
struct Home(PathBuf);

impl Home {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rapport-client-history-{name}-{}",
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

#[test]
fn restore_writes_the_old_value_as_a_new_change() -> Result {
    let home = Home::new("restore");
    let repo = Repo::init(&home.0)?;
    let mut acme = Customer::new("Acme", Relationship::Client);
    acme.tags = vec!["retainer".into()];
    let (id, ()) = repo.create(|tx| acme.write(tx))?;
    repo.change(id, |tx| {
        Customer::update(tx, |c| {
            c.stage = Stage::Proposal;
            c.tags.push("emea".into());
        })
    })?;
    repo.change(id, |tx| {
        Customer::update(tx, |c| {
            c.stage = Stage::Won;
            c.tags.clear();
        })
    })?;

    let before = repo.read(id, history::changes)?;
    let me = repo.public_key();
    assert_eq!(before.len(), 3);
    assert!(before.iter().all(|c| c.author == Some(me)));
    assert!(before.iter().all(|c| c.time.is_some()), "{before:?}");
    assert_eq!(before[1].fields, ["stage", "tags"]);
    assert_eq!(before[2].fields, ["stage", "tags"]);

    // Back to the stage of the first change, by a prefix of its hash.
    let first = before[0].hash.to_string();
    let restored = history::restore(&repo, id, "stage", &first[..10])?;
    assert_eq!(restored.from, before[0].hash);
    assert_eq!(restored.value, Some(json!("lead")));
    let change = restored.change.ok_or("a new change")?;
    let after = repo.read(id, history::changes)?;
    assert_eq!(after.len(), 4);
    assert_eq!(&after[..3], &before[..]);
    assert_eq!(
        (after[3].hash, after[3].author, after[3].fields.clone()),
        (change, Some(me), vec!["stage".to_owned()])
    );
    let now = repo.read(id, Customer::read)??;
    assert_eq!((now.stage, now.tags.len()), (Stage::Lead, 0));
    let entry = repo.index()?.into_iter().find(|(d, _)| *d == id);
    assert_eq!(entry.and_then(|(_, e)| e.stage).as_deref(), Some("lead"));

    // A list comes back whole.
    let second = before[1].hash.to_string();
    let restored = history::restore(&repo, id, "tags", &second)?;
    assert_eq!(restored.value, Some(json!(["retainer", "emea"])));
    let now = repo.read(id, Customer::read)??;
    assert_eq!(now.tags, ["retainer", "emea"]);

    // Restoring what is already there changes nothing.
    let heads = repo.heads(id)?;
    let again = history::restore(&repo, id, "tags", &second)?;
    assert_eq!(again.change, None);
    assert_eq!(repo.heads(id)?, heads);

    // The field's history shows the restore with the value it wrote.
    let stage = repo.read(id, |doc| history::field_history(doc, "stage"))??;
    let values: Vec<_> = stage.iter().map(|c| c.value.clone()).collect();
    assert_eq!(
        values,
        [
            Some(json!("lead")),
            Some(json!("proposal")),
            Some(json!("won")),
            Some(json!("lead"))
        ]
    );
    Ok(())
}

#[test]
fn text_is_restored_by_a_diff_and_missing_fields_are_removed() -> Result {
    let home = Home::new("text");
    let repo = Repo::init(&home.0)?;
    let (id, ()) = repo.create(|tx| Requirements::new("Portal", "Scope: login").write(tx))?;
    let first = repo.heads(id)?[0].to_string();
    repo.change(id, |tx| {
        Requirements::update(tx, |r| r.body.push_str(" and billing"))??;
        tx.put(ROOT, "note", "added later")?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    let body = |repo: &Repo| {
        repo.read(id, |doc| {
            Requirements::read(doc).map(|r| r.body.as_str().to_owned())
        })
    };
    assert_eq!(body(&repo)??, "Scope: login and billing");

    let text_object = |repo: &Repo| {
        repo.read(id, |doc| match doc.get(ROOT, "body") {
            Ok(Some((automerge::Value::Object(ObjType::Text), obj))) => Some(obj),
            _ => None,
        })
    };
    let object = text_object(&repo)?.ok_or("the body is text")?;

    let restored = history::restore(&repo, id, "body", &first)?;
    assert_eq!(restored.value, Some(json!("Scope: login")));
    assert_eq!(body(&repo)??, "Scope: login");
    // Still the same text object, edited rather than replaced, so edits
    // made elsewhere meanwhile merge into it.
    assert_eq!(text_object(&repo)?, Some(object));

    // `note` did not exist as of the first change: restoring removes it.
    let restored = history::restore(&repo, id, "note", &first)?;
    assert_eq!(restored.value, None);
    assert!(restored.change.is_some());
    let note = repo.read(id, |doc| doc.get(ROOT, "note").map(|found| found.is_some()))??;
    assert!(!note);
    Ok(())
}

#[test]
fn bad_fields_and_changes_are_refused_and_nothing_is_written() -> Result {
    let home = Home::new("refused");
    let repo = Repo::init(&home.0)?;
    let (id, ()) = repo.create(|tx| Customer::new("Acme", Relationship::Client).write(tx))?;
    let first = repo.heads(id)?[0].to_string();
    let heads = repo.heads(id)?;

    let error = history::restore(&repo, id, "colour", &first).err();
    assert!(
        matches!(&error, Some(HistoryError::UnknownField { field, known }) if field == "colour" && known.contains("stage")),
        "{error:?}"
    );
    let error = history::restore(&repo, id, "kind", &first).err();
    assert!(
        matches!(error, Some(HistoryError::Protected { .. })),
        "{error:?}"
    );
    // The document has one change: a prefix with another first digit
    // matches none.
    let other = if first.starts_with('0') { "1" } else { "0" };
    let error = history::restore(&repo, id, "stage", other).err();
    assert!(
        matches!(error, Some(HistoryError::UnknownChange { .. })),
        "{error:?}"
    );
    let error = history::restore(&repo, id, "stage", "not-hex").err();
    assert!(
        matches!(error, Some(HistoryError::NotAHash { .. })),
        "{error:?}"
    );
    assert_eq!(repo.heads(id)?, heads);
    Ok(())
}
