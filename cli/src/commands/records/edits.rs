//! `customer set` and `task set`: each `KEY=VALUE` becomes a checked edit
//! before anything is written, so one bad pair leaves the record as it was.
//! An empty value clears a field; `field.NAME=VALUE` sets a custom field
//! and `field.NAME=` removes it.

use anyhow::Result;
use rapport_client::Repo;
use rapport_model::{Customer, EditError, Repeat, Task};

use super::{input, lookup};

/// One change to a record, checked before anything is written.
pub(super) type Edit<R> = Box<dyn FnOnce(&mut R)>;

/// The change to a customer that `KEY=VALUE` asks for. `rep=me` is this
/// replica's key; the model reads every value ([`Customer::set`]).
pub(super) fn customer(change: &str, repo: &Repo) -> Result<Edit<Customer>> {
    let (key, value) = input::pair(change, "stage=won")?;
    let value = match (key, value.trim()) {
        ("rep", person) if !person.is_empty() => input::person(person, &repo.public_key())?,
        (_, value) => value.to_owned(),
    };
    checked(key, value, Customer::default(), Customer::set)
}

/// The change to a task that `KEY=VALUE` asks for. `customer=` takes a
/// unique prefix of a customer's id and `assignees=` may name `me`; the
/// model reads every value ([`Task::set`]).
pub(super) fn task(change: &str, repo: &Repo) -> Result<Edit<Task>> {
    let (key, value) = input::pair(change, "status=done")?;
    let value = match (key, value.trim()) {
        ("customer", prefix) if !prefix.is_empty() => lookup::customer(repo, prefix)?.to_string(),
        ("assignees", people) => input::people(people, &repo.public_key())?.join(","),
        (_, value) => value.to_owned(),
    };
    checked(key, value, Task::default(), Task::set)
}

/// The edit that sets `key` to `value` with `set`, once `set` took it on a
/// scratch record: what a record's `set` accepts does not depend on the
/// record, so the edit cannot fail when it is applied.
fn checked<R: 'static>(
    key: &str,
    value: String,
    mut scratch: R,
    set: fn(&mut R, &str, &str) -> Result<(), EditError>,
) -> Result<Edit<R>> {
    set(&mut scratch, key, &value)?;
    let key = key.to_owned();
    Ok(Box::new(move |record| {
        // Checked on the scratch record above.
        let _ = set(record, &key, &value);
    }))
}

/// A repeat rule, as written after `--repeat` or `repeat=`; `what` names
/// the argument in the error, which shows the rules there are.
pub(super) fn repeat(text: &str, what: &str) -> Result<Repeat> {
    text.parse()
        .map_err(|error| anyhow::anyhow!("{what}: {error}"))
}
