//! Showing records: aligned tables and `key: value` blocks for people, JSON
//! objects for `--json`.
//!
//! JSON objects use the documents' own field names (`relationship`, not the
//! `--kind` flag) plus the full document `id`, so what a script reads is what
//! another replica (or a JS client) finds in the document. Absent values are
//! `null`.

use rapport_model::{Comment, Customer, Requirements, Task};
use rapport_protocol::ids::DocumentId;
use serde_json::{Value, json};

/// What a command shows: text for people, one JSON value for `--json`.
#[derive(Debug)]
pub(super) struct Shown {
    pub(super) human: String,
    pub(super) json: Value,
}

impl Shown {
    pub(super) fn new(human: impl Into<String>, json: Value) -> Self {
        Self {
            human: human.into(),
            json,
        }
    }
}

/// How many characters of an id lists show.
const SHORT: usize = 8;

/// The first characters of an id, enough to type it back.
pub(super) fn short(id: &str) -> String {
    id.chars().take(SHORT).collect()
}

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| line(row, &widths))
        .collect::<Vec<_>>()
        .join("\n")
}

fn line(row: &[String], widths: &[usize]) -> String {
    let last = row.len().saturating_sub(1);
    let cells = row
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(index, (cell, width))| {
            if index == last {
                cell.clone()
            } else {
                format!("{cell:<width$}")
            }
        });
    cells.collect::<Vec<_>>().join("  ").trim_end().to_owned()
}

/// `key: value` lines, values aligned.
pub(super) fn fields(pairs: &[(String, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(key, _)| key.chars().count() + 1)
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| {
            format!("{:<width$} {value}", format!("{key}:"))
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An optional value as text; empty when absent.
pub(super) fn or_empty<T: ToString>(value: Option<&T>) -> String {
    value.map(ToString::to_string).unwrap_or_default()
}

pub(super) fn customer_json(id: DocumentId, customer: &Customer) -> Value {
    json!({
        "id": id.to_string(),
        "name": customer.name,
        "relationship": customer.relationship.as_str(),
        "contact": customer.contact,
        "email": customer.email,
        "stage": customer.stage.as_str(),
        "score": customer.score,
        "rep": customer.rep,
        "acquired": customer.acquired.map(|date| date.to_string()),
        "last_contact": customer.last_contact.map(|date| date.to_string()),
        "tags": customer.tags,
        "fields": customer.fields,
    })
}

pub(super) fn task_json(id: DocumentId, task: &Task) -> Value {
    let checklist: Vec<Value> = task
        .checklist
        .iter()
        .map(|step| json!({ "item": step.item, "done": step.done }))
        .collect();
    json!({
        "id": id.to_string(),
        "title": task.title,
        "status": task.status.as_str(),
        "priority": task.priority.as_str(),
        "tags": task.tags,
        "assignees": task.assignees,
        "due": task.due.map(|date| date.to_string()),
        "checklist": checklist,
        "subtasks": task.subtasks,
        "fields": task.fields,
        "repeat": task.repeat,
        "customer": task.customer,
        "parent": task.parent,
        "previous": task.previous,
        "series": task.series,
        "series_start": task.series_start.map(|date| date.to_string()),
    })
}

/// A requirements document as `--json` shows it; `body` is Markdown.
pub(super) fn doc_json(id: DocumentId, doc: &Requirements, body: &str) -> Value {
    json!({
        "id": id.to_string(),
        "title": doc.title,
        "customer": doc.customer,
        "body": body,
    })
}

pub(super) fn comment_json(thread: DocumentId, comment: &Comment) -> Value {
    json!({
        "id": comment.id,
        "thread": thread.to_string(),
        "author": comment.author,
        "at": comment.at,
        "body": comment.body,
        "mentions": comment.mentions,
        "reply_to": comment.reply_to,
        "resolved": comment.resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_do_not_pad_the_last_column() {
        let rows = vec![
            vec!["a".into(), "long cell".into(), "x".into()],
            vec!["bbb".into(), "c".into(), "".into()],
        ];
        let shown = table(&["ID", "NAME", "NOTE"], &rows);
        assert_eq!(shown, "ID   NAME       NOTE\na    long cell  x\nbbb  c");
    }

    #[test]
    fn fields_align_after_the_colon() {
        let pairs = [
            ("id".to_owned(), "7x".to_owned()),
            ("stage".to_owned(), "won".to_owned()),
        ];
        assert_eq!(fields(&pairs), "id:    7x\nstage: won");
        assert_eq!(short("abcdefghijk"), "abcdefgh");
    }
}
