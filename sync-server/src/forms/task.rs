//! The task document a submission becomes, written with plain automerge.
//!
//! The relay may not depend on the client library, so this file writes by
//! hand exactly the layout `rapport_client::model::Task::write` makes (the
//! integration test `tests/tests/forms.rs` compares the two value by value):
//! at the root `kind` = `"task"`, `schema` = 1 (unsigned), scalar strings
//! for `title`, `status`, `priority`, lists of strings for `tags`,
//! `assignees`, `subtasks`, an empty `checklist` list, a map of strings for
//! the custom `fields`, the `customer` document id or null, and null for
//! `due`, `repeat`, `parent`, `previous`, `series` and `series_start`.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, AutomergeError, ObjType, ROOT, ScalarValue};
use rapport_protocol::ids::{DocumentId, UnixMillis};
use rapport_protocol::relay::StoredChange;

use super::model::Form;
use super::submit::Checked;

/// The schema version of the client's model this layout matches.
const SCHEMA_VERSION: u64 = 1;

/// The priorities the client's model knows; a `priority` field with one of
/// them sets the task's priority.
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// The fields of a task made from a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewTask {
    pub(crate) title: String,
    pub(crate) priority: String,
    pub(crate) tags: Vec<String>,
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) customer: Option<DocumentId>,
    /// The due date, `YYYY-MM-DD`.
    pub(crate) due: Option<String>,
}

impl NewTask {
    /// The task for `submission` to `form`, received at `at`:
    ///
    /// - the title is the `title_field`'s value, or `"{title}: {name}"`
    ///   from a field called `name`, or `"{title}: submission"`; one line,
    ///   at most 200 characters;
    /// - the priority is the value of a field called `priority` if it is
    ///   one the model knows (any case), `normal` otherwise;
    /// - tagged `form:{name}`, then the form's own tags;
    /// - the custom fields are every submitted value, plus `form` (the
    ///   form's id) and `submitted_at` (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub(crate) fn from_submission(
        form: &Form,
        submission: &Checked,
        customer: Option<DocumentId>,
        at: UnixMillis,
    ) -> Self {
        let values = &submission.values;
        let title = match form.title_field.as_ref().and_then(|f| values.get(f)) {
            Some(value) => value.clone(),
            None => match values.get("name") {
                Some(name) => format!("{}: {name}", form.title),
                None => format!("{}: submission", form.title),
            },
        };
        let priority = values
            .get("priority")
            .map(|p| p.to_lowercase())
            .filter(|p| PRIORITIES.contains(&p.as_str()))
            .unwrap_or_else(|| "normal".to_owned());
        let mut fields = values.clone();
        fields.insert("form".into(), form.id.clone());
        fields.insert("submitted_at".into(), utc(at));
        Self {
            title: one_line(&title, 200),
            priority,
            tags: tags(form),
            fields,
            customer,
            due: None,
        }
    }

    /// The document as its single change, by `actor`, timed `at`.
    pub(crate) fn changes(
        &self,
        actor: &[u8],
        at: UnixMillis,
    ) -> Result<Vec<StoredChange>, AutomergeError> {
        self.changes_with_message(actor, at, "form submission")
    }

    /// The document as its single change, with a commit message.
    pub(crate) fn changes_with_message(
        &self,
        actor: &[u8],
        at: UnixMillis,
        message: &str,
    ) -> Result<Vec<StoredChange>, AutomergeError> {
        let mut doc = Automerge::new().with_actor(ActorId::from(actor));
        let mut tx = doc.transaction();
        self.write(&mut tx)?;
        let secs = i64::try_from(at.as_secs()).unwrap_or(i64::MAX);
        tx.commit_with(
            CommitOptions::default()
                .with_message(message.to_owned())
                .with_time(secs),
        );
        Ok(doc
            .get_changes(&[])
            .iter()
            .map(StoredChange::from)
            .collect())
    }

    fn write(&self, tx: &mut impl Transactable) -> Result<(), AutomergeError> {
        tx.put(ROOT, "title", self.title.as_str())?;
        tx.put(ROOT, "status", "open")?;
        tx.put(ROOT, "priority", self.priority.as_str())?;
        strings(tx, "tags", &self.tags)?;
        strings(tx, "assignees", &[])?;
        match &self.due {
            Some(due) => tx.put(ROOT, "due", due.as_str())?,
            None => tx.put(ROOT, "due", ScalarValue::Null)?,
        }
        tx.put_object(ROOT, "checklist", ObjType::List)?;
        strings(tx, "subtasks", &[])?;
        let fields = tx.put_object(ROOT, "fields", ObjType::Map)?;
        for (name, value) in &self.fields {
            tx.put(&fields, name.as_str(), value.as_str())?;
        }
        tx.put(ROOT, "repeat", ScalarValue::Null)?;
        match &self.customer {
            Some(customer) => tx.put(ROOT, "customer", customer.to_string())?,
            None => tx.put(ROOT, "customer", ScalarValue::Null)?,
        }
        for empty in ["parent", "previous", "series", "series_start"] {
            tx.put(ROOT, empty, ScalarValue::Null)?;
        }
        tx.put(ROOT, "kind", "task")?;
        tx.put(ROOT, "schema", SCHEMA_VERSION)?;
        Ok(())
    }
}

fn strings(tx: &mut impl Transactable, key: &str, items: &[String]) -> Result<(), AutomergeError> {
    let list = tx.put_object(ROOT, key, ObjType::List)?;
    for (i, item) in items.iter().enumerate() {
        tx.insert(&list, i, item.as_str())?;
    }
    Ok(())
}

/// `form:{name}`, then the form's own tags.
fn tags(form: &Form) -> Vec<String> {
    let mut tags = vec![format!("form:{}", form.name)];
    for tag in &form.tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    tags
}

/// The first line of `text`, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    let mut out: String = line.chars().take(max).collect();
    if out.len() < line.len() {
        out.pop();
        out.push('…');
    }
    out
}

/// `at` as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn utc(at: UnixMillis) -> String {
    let secs = at.as_secs();
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Days since 1970-01-01 as a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
pub(crate) fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use automerge::ReadDoc;

    use super::super::model::{Field, FieldType};
    use super::*;

    fn form(title_field: Option<&str>) -> Form {
        Form {
            id: "form-1".into(),
            workspace: "ws-1".into(),
            name: "support".into(),
            title: "Support".into(),
            description: String::new(),
            fields: vec![Field {
                name: "name".into(),
                label: "Name".into(),
                kind: FieldType::Text,
                required: false,
                choices: vec![],
            }],
            title_field: title_field.map(str::to_owned),
            tags: vec!["feedback".into(), "form:support".into()],
            created_by: rapport_protocol::ids::PublicKey::from_bytes([1; 32]),
            created_at: 0,
            closed_at: None,
            submissions: 0,
        }
    }

    fn submission(values: &[(&str, &str)]) -> Checked {
        Checked {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(UnixMillis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(utc(UnixMillis(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(utc(UnixMillis(1_767_225_599_000)), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn titles_priorities_tags_and_fields() {
        let at = UnixMillis(1_700_000_000_000);
        let task = NewTask::from_submission(
            &form(None),
            &submission(&[("name", "Ann"), ("priority", "HIGH")]),
            None,
            at,
        );
        assert_eq!(task.title, "Support: Ann");
        assert_eq!(task.priority, "high");
        assert_eq!(task.tags, ["form:support", "feedback"], "no repeats");
        assert_eq!(task.fields["form"], "form-1");
        assert_eq!(task.fields["priority"], "HIGH");
        assert_eq!(task.fields["submitted_at"], "2023-11-14T22:13:20Z");
        let task = NewTask::from_submission(
            &form(Some("problem")),
            &submission(&[
                ("problem", "Login fails\nsince Monday"),
                ("priority", "asap"),
            ]),
            None,
            at,
        );
        assert_eq!(task.title, "Login fails");
        assert_eq!(task.priority, "normal");
        let task = NewTask::from_submission(&form(None), &submission(&[]), None, at);
        assert_eq!(task.title, "Support: submission");
        assert_eq!(one_line(&"x".repeat(300), 200).chars().count(), 200);
    }

    #[test]
    fn one_change_by_the_given_actor() {
        let task = NewTask::from_submission(
            &form(None),
            &submission(&[("name", "Ann")]),
            Some(DocumentId::from_bytes([2; 16])),
            UnixMillis(1_700_000_000_000),
        );
        let changes = task
            .changes(&[9; 40], UnixMillis(1_700_000_000_000))
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].actor, vec![9; 40]);
        assert!(changes[0].deps.is_empty());
        let mut doc = Automerge::new();
        doc.load_incremental(&changes[0].bytes).unwrap();
        let (value, _) = doc.get(ROOT, "title").unwrap().unwrap();
        assert_eq!(value.as_str(), Some("Support: Ann"));
        let (value, _) = doc.get(ROOT, "customer").unwrap().unwrap();
        assert_eq!(
            value.as_str(),
            Some(DocumentId::from_bytes([2; 16]).to_string().as_str())
        );
    }
}
