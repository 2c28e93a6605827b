//! `customer set` and `task set`: each `KEY=VALUE` becomes a checked edit
//! before anything is written, so one bad pair leaves the record as it was.
//! An empty value clears a field; `field.NAME=VALUE` sets a custom field
//! and `field.NAME=` removes it.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use rapport_client::Repo;
use rapport_client::model::{Customer, Priority, Relationship, Repeat, Stage, Status, Task};

use super::{input, lookup};

/// One change to a record, checked before anything is written.
pub(super) type Edit<R> = Box<dyn FnOnce(&mut R)>;

const CUSTOMER_FIELDS: (&str, &str) = (
    "customer",
    "name, contact, email, stage, score, rep, kind, acquired, last_contact, tags",
);

const TASK_FIELDS: (&str, &str) = (
    "task",
    "title, status, priority, due, repeat, customer, tags, assignees",
);

/// The change to a customer that `KEY=VALUE` asks for.
pub(super) fn customer(change: &str, repo: &Repo) -> Result<Edit<Customer>> {
    let (key, value) = input::pair(change, "stage=won")?;
    let value = value.trim().to_owned();
    Ok(match key {
        "name" => {
            let name = input::required(&value, "name")?;
            Box::new(move |c| c.name = name)
        }
        "contact" => Box::new(move |c| c.contact = value),
        "email" => Box::new(move |c| c.email = value),
        "stage" => {
            let stage = input::choose(&value, Stage::KNOWN, "stage")?;
            Box::new(move |c| c.stage = stage)
        }
        "score" => {
            let score = input::number(&value, "score")?;
            Box::new(move |c| c.score = score)
        }
        "rep" => {
            let rep = (!value.is_empty())
                .then(|| input::person(&value, &repo.public_key()))
                .transpose()?;
            Box::new(move |c| c.rep = rep)
        }
        "kind" | "relationship" => {
            let relationship = input::choose(&value, Relationship::KNOWN, "kind")?;
            Box::new(move |c| c.relationship = relationship)
        }
        "acquired" => {
            let date = input::optional_date(&value, "acquired")?;
            Box::new(move |c| c.acquired = date)
        }
        "last_contact" => {
            let date = input::optional_date(&value, "last_contact")?;
            Box::new(move |c| c.last_contact = date)
        }
        "tags" => Box::new(move |c| c.tags = input::list(&value)),
        other => custom_field(other, value, CUSTOMER_FIELDS, |c: &mut Customer| {
            &mut c.fields
        })?,
    })
}

/// The change to a task that `KEY=VALUE` asks for.
pub(super) fn task(change: &str, repo: &Repo) -> Result<Edit<Task>> {
    let (key, value) = input::pair(change, "status=done")?;
    let value = value.trim().to_owned();
    let me = repo.public_key();
    Ok(match key {
        "title" => {
            let title = input::required(&value, "title")?;
            Box::new(move |t| t.title = title)
        }
        "status" => {
            let status = input::choose(&value, Status::KNOWN, "status")?;
            Box::new(move |t| t.status = status)
        }
        "priority" => {
            let priority = input::choose(&value, Priority::KNOWN, "priority")?;
            Box::new(move |t| t.priority = priority)
        }
        "due" => {
            let due = input::optional_date(&value, "due")?;
            Box::new(move |t| t.due = due)
        }
        "repeat" => {
            let rule = (!value.is_empty())
                .then(|| repeat(&value, "repeat"))
                .transpose()?;
            Box::new(move |t| t.repeat = rule.map(|rule| rule.to_string()))
        }
        "customer" => {
            let customer = (!value.is_empty())
                .then(|| lookup::customer(repo, &value))
                .transpose()?;
            Box::new(move |t| t.customer = customer.map(|c| c.to_string()))
        }
        "tags" => Box::new(move |t| t.tags = input::list(&value)),
        "assignees" => {
            let people = input::people(&value, &me)?;
            Box::new(move |t| t.assignees = people)
        }
        other => custom_field(other, value, TASK_FIELDS, |t: &mut Task| &mut t.fields)?,
    })
}

/// A repeat rule, as written after `--repeat` or `repeat=`; `what` names
/// the argument in the error, which shows the rules there are.
pub(super) fn repeat(text: &str, what: &str) -> Result<Repeat> {
    text.parse()
        .map_err(|error| anyhow::anyhow!("{what}: {error}"))
}

/// The edit `field.NAME=VALUE` asks for; any other key is unknown.
fn custom_field<R: 'static>(
    key: &str,
    value: String,
    (kind, known): (&str, &str),
    fields: fn(&mut R) -> &mut BTreeMap<String, String>,
) -> Result<Edit<R>> {
    let Some(name) = key.strip_prefix("field.").filter(|name| !name.is_empty()) else {
        bail!("unknown {kind} field `{key}`: use {known}, or field.NAME for a custom field");
    };
    let name = name.to_owned();
    Ok(Box::new(move |record| {
        let fields = fields(record);
        if value.is_empty() {
            fields.remove(&name);
        } else {
            fields.insert(name, value);
        }
    }))
}
