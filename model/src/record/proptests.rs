//! Property tests: arbitrary customers and tasks round-trip through
//! `write` then `read`, into a new document and over an existing one.

use automerge::Automerge;
use automerge::transaction::Transaction;
use proptest::prelude::*;

use super::{ChecklistItem, Customer, Date, Priority, Relationship, Stage, Status, Task};

/// Run `edit` in one transaction of `doc`.
fn edit<T>(doc: &mut Automerge, edit: impl FnOnce(&mut Transaction<'_>) -> T) -> T {
    let mut tx = doc.transaction();
    let result = edit(&mut tx);
    tx.commit();
    result
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn maybe_date() -> impl Strategy<Value = Option<Date>> {
    proptest::option::of(
        (0u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).ok()),
    )
    .prop_map(Option::flatten)
}

fn known_or(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(names).prop_map(String::from),
        text()
    ]
}

prop_compose! {
    fn customer()(
        (relationship, name, contact, email) in (known_or(&["client", "customer"]), text(), text(), text()),
        (acquired, last_contact) in (maybe_date(), maybe_date()),
        (stage, score) in (known_or(&["lead", "won", "churned"]), any::<i64>()),
        rep in proptest::option::of(text()),
        tags in proptest::collection::vec(text(), 0..4),
        fields in proptest::collection::btree_map(text(), text(), 0..4),
    ) -> Customer {
        Customer {
            relationship: Relationship::from(relationship.as_str()),
            name, contact, email, acquired, last_contact,
            stage: Stage::from(stage.as_str()),
            score, rep, tags, fields,
        }
    }
}

prop_compose! {
    fn task()(
        (title, status, priority) in (text(), known_or(&["open", "done"]), known_or(&["low", "urgent"])),
        (tags, assignees, subtasks) in (
            proptest::collection::vec(text(), 0..4),
            proptest::collection::vec(text(), 0..3),
            proptest::collection::vec(text(), 0..3),
        ),
        due in maybe_date(),
        checklist in proptest::collection::vec((text(), any::<bool>()), 0..4),
        fields in proptest::collection::btree_map(text(), text(), 0..3),
        (repeat, customer, parent) in (
            proptest::option::of(text()), proptest::option::of(text()), proptest::option::of(text()),
        ),
        (previous, series, series_start) in (
            proptest::option::of(text()), proptest::option::of(text()), maybe_date(),
        ),
    ) -> Task {
        Task {
            title, tags, assignees, due, subtasks, fields, repeat, customer, parent,
            previous, series, series_start,
            status: Status::from(status.as_str()),
            priority: Priority::from(priority.as_str()),
            checklist: checklist.into_iter().map(|(item, done)| ChecklistItem { item, done }).collect(),
        }
    }
}

proptest! {
    #[test]
    fn customers_round_trip(first in customer(), second in customer()) {
        let mut doc = Automerge::new();
        edit(&mut doc, |tx| first.write(tx)).unwrap();
        prop_assert_eq!(Customer::read(&doc).unwrap(), first);
        edit(&mut doc, |tx| second.write(tx)).unwrap();
        prop_assert_eq!(Customer::read(&doc).unwrap(), second);
    }

    #[test]
    fn tasks_round_trip(first in task(), second in task()) {
        let mut doc = Automerge::new();
        edit(&mut doc, |tx| first.write(tx)).unwrap();
        prop_assert_eq!(Task::read(&doc).unwrap(), first);
        edit(&mut doc, |tx| second.write(tx)).unwrap();
        prop_assert_eq!(Task::read(&doc).unwrap(), second);
    }
}
