//! Finishing repeating tasks: the next occurrence is made once, not once per
//! replica.
//!
//! # Why there is one next occurrence
//!
//! The next occurrence of task `T` lives in a document whose id is derived
//! from `T`'s id ([`next_occurrence_id`]), and its content is computed from
//! `T` alone ([`Task::next_occurrence`]). Two replicas that finish `T`
//! while offline each write that same document; when they sync, automerge
//! merges the two writes into one document, so the workspace holds one next
//! task, not two. Its fields merge cleanly:
//!
//! - every field is a scalar (the title too: the model has no text object
//!   on tasks) or a list or map object put at a root key. Two replicas that
//!   put the same key concurrently make a conflict that automerge resolves
//!   the same way everywhere (the greater operation id wins), so the title
//!   is not doubled, and the tag list and checklist are one replica's list,
//!   not both concatenated;
//! - the values are equal anyway when both replicas finished the same state
//!   of `T`. Had they seen different states (a tag added on one side just
//!   before), each field takes one side's value.
//!
//! Finishing `T` again (reopened, then done) finds its next occurrence in
//! the replica and makes nothing; so does a replica that already synced the
//! next occurrence from another.
//!
//! # Who makes it
//!
//! The replica that finishes the task, through [`Repo::finish_task`] (the
//! CLI's `task done`) or [`Repo::ensure_next_occurrence`] (after `task set
//! … status=done`). `finish_task` writes the next occurrence *before* it
//! marks the task done, so a crash in between leaves an open task whose
//! next occurrence exists (finishing it again is harmless), never a done
//! task without one. `task set` changes the status with the other fields
//! first and ensures after; if it stops in between, `task done` on the task
//! makes the missing next occurrence.
//!
//! A replica that merely *receives* a done task through sync does not make
//! its next occurrence. "Once" does not need it: the replica that finished
//! the task made it and syncs it. Doing it on receipt would be safe (the
//! write is idempotent) but not free: sync is per document, so a replica
//! often receives the done status before the next occurrence's document,
//! and every such replica would add its own concurrent creation to the
//! history; and a client who may see `T` but not the workspace's new
//! documents would make a copy it cannot share. The cost of the choice: a
//! task marked done by a peer that does not run this code (a JS client, an
//! older rapport) gets no next occurrence until someone runs `rapport task
//! done` on it again, or calls [`Repo::ensure_next_occurrence`].
//!
//! # Limits
//!
//! - Each replica that makes the next occurrence makes its own list and
//!   map objects (tags, checklist, custom fields), and the merge keeps one
//!   replica's object whole. An edit to those lists made on a replica
//!   before it has synced with another replica that also made the next
//!   occurrence can therefore disappear in the merge. Scalar fields
//!   (status, due date, title) edited later win as usual.
//! - The id is predictable by anyone who can read `T`. A document of
//!   another kind in its place is refused ([`ModelError::WrongKind`]); a
//!   task in its place is taken as the next occurrence.

use rapport_protocol::ids::DocumentId;

use super::Repo;
use crate::error::ClientError;
use rapport_model::{
    Date, Header, Kind, ModelError, NextOccurrence, Status, Task, next_occurrence_id,
};

impl Repo {
    /// Marks task `id` done and, if it repeats, makes sure its next
    /// occurrence is in the replica, writing it first. `today` is the date
    /// a task without a due date counts from.
    ///
    /// The next occurrence's document is [`next_occurrence_id`]`(id)`, so
    /// replicas that finish the same task, even concurrently and offline,
    /// write one document between them, which sync merges into one task.
    ///
    /// A `repeat` this version cannot read does not stop the task from
    /// being done: the result is [`NextOccurrence::BadRule`].
    pub fn finish_task(&self, id: DocumentId, today: Date) -> Result<NextOccurrence, ClientError> {
        let task = self.task(id)?;
        let next = self.make_next(id, &task, today)?;
        if task.status != Status::Done {
            self.change(id, |tx| Task::update(tx, |task| task.status = Status::Done))?;
        }
        Ok(next)
    }

    /// Makes sure that task `id`, if it is done and repeats, has its next
    /// occurrence in the replica: idempotent, safe to call on any task at
    /// any time. [`NextOccurrence::None`] for a task that is not done.
    pub fn ensure_next_occurrence(
        &self,
        id: DocumentId,
        today: Date,
    ) -> Result<NextOccurrence, ClientError> {
        let task = self.task(id)?;
        if task.status != Status::Done {
            return Ok(NextOccurrence::None);
        }
        self.make_next(id, &task, today)
    }

    fn task(&self, id: DocumentId) -> Result<Task, ClientError> {
        self.read(id, Task::read)?
            .map_err(|source| ClientError::Change {
                id,
                source: source.into(),
            })
    }

    /// Writes the next occurrence of `task` unless the replica has it.
    fn make_next(
        &self,
        id: DocumentId,
        task: &Task,
        today: Date,
    ) -> Result<NextOccurrence, ClientError> {
        let (next_id, next) = match task.next_occurrence(&id, today) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(NextOccurrence::None),
            Err(error) => return Ok(NextOccurrence::BadRule(error)),
        };
        debug_assert_eq!(next_id, next_occurrence_id(&id));
        let (due, created) = self.create_at(next_id, |tx| match Header::read(tx) {
            // Empty: not made yet, or asked for and not yet fetched.
            Err(ModelError::MissingKind) => next.write(tx).map(|()| (next.due, true)),
            Ok(header) if header.kind == Kind::Task => Task::read(tx).map(|t| (t.due, false)),
            Ok(header) => Err(ModelError::WrongKind {
                expected: Kind::Task,
                found: header.kind,
            }),
            Err(error) => Err(error),
        })?;
        Ok(NextOccurrence::Next {
            id: next_id,
            due,
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use automerge::{ActorId, Automerge};

    use super::*;
    use rapport_model::ChecklistItem;

    fn date(text: &str) -> Date {
        text.parse().expect("a valid test date")
    }

    fn weekly_invoice() -> Task {
        let mut task = Task::new("Send the weekly invoice");
        task.repeat = Some("weekly".into());
        task.due = Some(date("2025-01-06"));
        task.tags = vec!["billing".into(), "acme".into()];
        task.checklist = vec![
            ChecklistItem {
                item: "draft".into(),
                done: true,
            },
            ChecklistItem::new("send"),
        ];
        task
    }

    /// A document written by one actor, as a replica would make it.
    fn made_by(actor: u8, task: &Task) -> Automerge {
        let mut doc = Automerge::new().with_actor(ActorId::from([actor; 32].as_slice()));
        doc.transact(|tx| task.write(tx))
            .expect("a task writes into an empty document");
        doc
    }

    #[test]
    fn two_concurrent_creations_merge_into_one_clean_task() {
        let id = DocumentId::from_bytes([7; 16]);
        let today = date("2025-01-08");
        let (next_id, next) = weekly_invoice()
            .next_occurrence(&id, today)
            .unwrap()
            .expect("a weekly task repeats");
        assert_eq!(next_id, next_occurrence_id(&id));
        assert_eq!(next.due, Some(date("2025-01-13")));
        assert_eq!(next.status, Status::Open);
        assert_eq!(next.previous.as_deref(), Some(id.to_string().as_str()));
        assert_eq!(next.series, next.previous);
        assert!(next.checklist.iter().all(|step| !step.done));

        let mut a = made_by(1, &next);
        let mut b = made_by(2, &next);
        a.merge(&mut b).unwrap();
        b.merge(&mut made_by(1, &next)).unwrap();
        assert_eq!(a.get_heads().len(), 2, "two concurrent creations");
        for doc in [&a, &b] {
            let merged = Task::read(doc).unwrap();
            assert_eq!(merged, next, "no field doubled by the merge");
        }
        assert_eq!(a.get_heads(), b.get_heads());
    }

    #[test]
    fn the_series_and_its_start_carry_over() {
        let first = DocumentId::from_bytes([1; 16]);
        let mut monthly = Task::new("Monthly report");
        monthly.repeat = Some("monthly".into());
        monthly.due = Some(date("2025-01-31"));
        let today = date("2025-02-03");
        let (second_id, second) = monthly.next_occurrence(&first, today).unwrap().unwrap();
        let (_, third) = second.next_occurrence(&second_id, today).unwrap().unwrap();
        assert_eq!(second.due, Some(date("2025-02-28")));
        assert_eq!(third.due, Some(date("2025-03-31")), "back to the 31st");
        assert_eq!(third.previous, Some(second_id.to_string()));
        assert_eq!(third.series, Some(first.to_string()));
        assert_eq!(third.series_start, Some(date("2025-01-31")));
    }

    #[test]
    fn without_a_due_date_the_series_counts_from_the_day_it_is_finished() {
        let mut task = Task::new("Water the plants");
        task.repeat = Some("every 3 days".into());
        let id = DocumentId::from_bytes([2; 16]);
        let (_, next) = task
            .next_occurrence(&id, date("2025-06-30"))
            .unwrap()
            .unwrap();
        assert_eq!(next.due, Some(date("2025-07-03")));
        assert_eq!(next.series_start, Some(date("2025-06-30")));
    }

    /// A fresh replica in a temporary folder, removed on drop.
    struct Home(std::path::PathBuf, Repo);

    impl Home {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("rapport-recurring-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let repo = Repo::init(&dir).expect("a new temporary home initialises");
            Self(dir, repo)
        }
    }

    impl Drop for Home {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tasks_after(repo: &Repo, id: DocumentId) -> Vec<(DocumentId, Task)> {
        repo.index()
            .unwrap()
            .into_iter()
            .filter(|(_, entry)| entry.kind == Kind::Task)
            .map(|(other, _)| (other, repo.task(other).unwrap()))
            .filter(|(_, task)| task.previous == Some(id.to_string()))
            .collect()
    }

    #[test]
    fn finishing_twice_makes_one_next_occurrence() {
        let home = Home::new("twice");
        let repo = &home.1;
        let (id, ()) = repo.create(|tx| weekly_invoice().write(tx)).unwrap();
        let today = date("2025-01-07");
        let first = repo.finish_task(id, today).unwrap();
        let NextOccurrence::Next {
            id: next,
            due,
            created: true,
        } = first
        else {
            panic!("the first finish makes the next occurrence: {first:?}");
        };
        assert_eq!(
            (next, due),
            (next_occurrence_id(&id), Some(date("2025-01-13")))
        );
        assert_eq!(repo.task(id).unwrap().status, Status::Done);
        // Reopened and done again; and ensured again.
        repo.change(id, |tx| Task::update(tx, |t| t.status = Status::Open))
            .unwrap();
        let again = repo.finish_task(id, date("2025-01-20")).unwrap();
        assert_eq!(
            again,
            NextOccurrence::Next {
                id: next,
                due: Some(date("2025-01-13")),
                created: false,
            }
        );
        let ensured = repo.ensure_next_occurrence(id, today).unwrap();
        assert!(matches!(
            ensured,
            NextOccurrence::Next { created: false, .. }
        ));
        let after = tasks_after(repo, id);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].1.title, "Send the weekly invoice");
        assert_eq!(after[0].1.status, Status::Open);
    }

    #[test]
    fn an_open_task_ensures_nothing_and_a_plain_task_just_finishes() {
        let home = Home::new("plain");
        let repo = &home.1;
        let today = date("2025-01-07");
        let (weekly, ()) = repo.create(|tx| weekly_invoice().write(tx)).unwrap();
        assert_eq!(
            repo.ensure_next_occurrence(weekly, today).unwrap(),
            NextOccurrence::None
        );
        assert!(tasks_after(repo, weekly).is_empty());
        let (plain, ()) = repo.create(|tx| Task::new("once").write(tx)).unwrap();
        assert_eq!(
            repo.finish_task(plain, today).unwrap(),
            NextOccurrence::None
        );
        assert_eq!(repo.task(plain).unwrap().status, Status::Done);
        assert_eq!(repo.index().unwrap().len(), 2, "nothing else was made");
    }

    #[test]
    fn a_rule_this_version_cannot_read_still_lets_the_task_finish() {
        let home = Home::new("bad-rule");
        let repo = &home.1;
        let mut task = Task::new("odd");
        task.repeat = Some("every 2nd tuesday".into());
        let (id, ()) = repo.create(|tx| task.write(tx)).unwrap();
        let result = repo.finish_task(id, date("2025-01-07")).unwrap();
        assert!(matches!(result, NextOccurrence::BadRule(_)), "{result:?}");
        assert_eq!(repo.task(id).unwrap().status, Status::Done);
        assert_eq!(repo.index().unwrap().len(), 1);
    }

    #[test]
    fn a_next_occurrence_asked_for_and_not_yet_fetched_is_written_into() {
        let home = Home::new("wanted");
        let repo = &home.1;
        let (id, ()) = repo.create(|tx| weekly_invoice().write(tx)).unwrap();
        // The relay named it (another replica made it); it is not here yet.
        repo.want(next_occurrence_id(&id)).unwrap();
        let made = repo.finish_task(id, date("2025-01-07")).unwrap();
        assert!(
            matches!(made, NextOccurrence::Next { created: true, .. }),
            "{made:?}"
        );
        assert_eq!(tasks_after(repo, id).len(), 1);
    }

    #[test]
    fn a_document_of_another_kind_in_its_place_is_an_error() {
        let home = Home::new("squatted");
        let repo = &home.1;
        let (id, ()) = repo.create(|tx| weekly_invoice().write(tx)).unwrap();
        let squatter =
            rapport_model::Customer::new("Squatter", rapport_model::Relationship::Customer);
        repo.create_at(next_occurrence_id(&id), |tx| squatter.write(tx))
            .unwrap();
        let error = repo.finish_task(id, date("2025-01-07")).unwrap_err();
        assert!(error.to_string().contains("customer"), "{error}");
        assert_eq!(
            repo.task(id).unwrap().status,
            Status::Open,
            "nothing written"
        );
    }

    #[test]
    fn no_rule_no_next_and_a_bad_rule_is_an_error() {
        let id = DocumentId::from_bytes([3; 16]);
        let today = date("2025-01-01");
        assert_eq!(Task::new("once").next_occurrence(&id, today), Ok(None));
        let mut odd = Task::new("odd");
        odd.repeat = Some("every 2nd tuesday".into());
        assert!(odd.next_occurrence(&id, today).is_err());
    }
}
