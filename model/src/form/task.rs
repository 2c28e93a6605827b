//! The task a form submission becomes.

use rapport_protocol::ids::{DocumentId, UnixMillis};

use super::Form;
use super::submission::Checked;
use crate::date::utc_timestamp;
use crate::record::{Priority, Task};

/// The task for `submission` to `form`, received at `at`:
///
/// - the title is the `title_field`'s value, or `"{title}: {name}"` from a
///   field called `name`, or `"{title}: submission"`; one line, at most 200
///   characters;
/// - the priority is the value of a field called `priority` if it is one
///   the model knows (any case), normal otherwise;
/// - tagged `form:{name}`, then the form's own tags;
/// - the custom fields are every submitted value, plus `form` (the form's
///   id) and `submitted_at` (UTC, `YYYY-MM-DDTHH:MM:SSZ`);
/// - linked to `customer` when the submission's email matched one.
pub fn task_for(
    form: &Form,
    submission: &Checked,
    customer: Option<DocumentId>,
    at: UnixMillis,
) -> Task {
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
        .map(|p| Priority::from(p.to_lowercase().as_str()))
        .filter(Priority::is_known)
        .unwrap_or_default();
    let mut fields = values.clone();
    fields.insert("form".into(), form.id.clone());
    fields.insert("submitted_at".into(), utc_timestamp(at));
    let mut task = Task::new(one_line(&title, 200));
    task.priority = priority;
    task.tags = tags(form);
    task.fields = fields;
    if let Some(customer) = customer {
        task.set_customer(&customer);
    }
    task
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
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    let mut out: String = line.chars().take(max).collect();
    if out.len() < line.len() {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use rapport_protocol::ids::PublicKey;

    use super::super::{FieldType, FormField};
    use super::*;

    fn form(title_field: Option<&str>) -> Form {
        Form {
            id: "form-1".into(),
            workspace: "ws-1".into(),
            name: "support".into(),
            title: "Support".into(),
            description: String::new(),
            fields: vec![FormField {
                name: "name".into(),
                label: "Name".into(),
                kind: FieldType::Text,
                required: false,
                choices: vec![],
            }],
            title_field: title_field.map(str::to_owned),
            tags: vec!["feedback".into(), "form:support".into()],
            created_by: PublicKey::from_bytes([1; 32]),
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
    fn titles_priorities_tags_and_fields() {
        let at = UnixMillis(1_700_000_000_000);
        let task = task_for(
            &form(None),
            &submission(&[("name", "Ann"), ("priority", "HIGH")]),
            None,
            at,
        );
        assert_eq!(task.title, "Support: Ann");
        assert_eq!(task.priority, Priority::High);
        assert_eq!(task.tags, ["form:support", "feedback"], "no repeats");
        assert_eq!(task.fields["form"], "form-1");
        assert_eq!(task.fields["priority"], "HIGH");
        assert_eq!(task.fields["submitted_at"], "2023-11-14T22:13:20Z");
        let task = task_for(
            &form(Some("problem")),
            &submission(&[
                ("problem", "Login fails\nsince Monday"),
                ("priority", "asap"),
            ]),
            Some(DocumentId::from_bytes([2; 16])),
            at,
        );
        assert_eq!(task.title, "Login fails");
        assert_eq!(task.priority, Priority::Normal);
        assert_eq!(
            task.customer,
            Some(DocumentId::from_bytes([2; 16]).to_string())
        );
        let task = task_for(&form(None), &submission(&[]), None, at);
        assert_eq!(task.title, "Support: submission");
        assert_eq!(one_line(&"x".repeat(300), 200).chars().count(), 200);
    }
}
