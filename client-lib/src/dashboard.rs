//! The dashboard: pipeline, workload, overdue tasks, customers not contacted
//! lately and customer satisfaction, computed from the replica's index
//! alone, offline.
//!
//! [`compute`] is a pure function of index entries, a day and [`Options`]:
//! it opens no document, so it costs one pass over the entries (the index
//! rows, not the automerge documents; see [`index`] for reading them).
//!
//! # What the figures mean
//!
//! - **Pipeline**: customer records by lifecycle stage, with how many and the
//!   sum of their lead scores. Every stage this version knows is listed, in
//!   lifecycle order, even when empty; stages written by newer versions
//!   follow, by name. A record without a stage counts as `lead` and one
//!   without a score as 0, as the model reads them.
//! - **Open tasks** are tasks whose status is neither `done` nor `cancelled`
//!   (so `open`, `in_progress`, `blocked`, and any status a newer version
//!   wrote). A task is **overdue** when it is open and its due date is
//!   before the day the dashboard is for.
//! - **Workload**: per assignee (base58 key), the open and the overdue tasks;
//!   a task with two assignees counts for both, one with none counts under
//!   "unassigned" (`assignee: null`).
//! - **Not contacted**: customers whose last contact was more than
//!   `stale_days` days ago, or never, leaving out those whose stage is
//!   `lost` or `churned` (nobody is expected to call them). Never contacted
//!   first, then the longest silence first.
//! - **CSAT**: there is no form model yet, so a feedback submission is a task
//!   tagged [`FEEDBACK_TAG`] whose custom field [`CSAT_FIELD`] holds an
//!   integer from 1 to 5 (what an intake form would write for "how satisfied
//!   are you?"). The average is over those; a feedback task without a score
//!   in range is counted as `unscored` and left out of the average.
//!
//! ```
//! use rapport_client::dashboard::{self, Options};
//!
//! let options = Options { today: "2025-03-10".parse()?, stale_days: 30 };
//! let figures = dashboard::compute(&[], &options);
//! assert_eq!(figures.csat.responses, 0);
//! assert_eq!(figures.csat.average, None);
//! # Ok::<(), rapport_model::DateError>(())
//! ```

use std::cmp::Reverse;
use std::collections::BTreeMap;

use rapport_protocol::ids::DocumentId;
use serde::Serialize;

use crate::error::ClientError;
pub use crate::index::CSAT_FIELD;
use crate::index::IndexEntry;
use crate::repo::Repo;
use rapport_model::{Date, Kind, Stage, Status};

/// The tag that marks a task as a feedback submission.
pub const FEEDBACK_TAG: &str = "feedback";
/// The lowest and highest satisfaction score.
pub const CSAT_SCALE: std::ops::RangeInclusive<i64> = 1..=5;
/// Customers not contacted for more than this many days are listed, unless
/// told otherwise.
pub const DEFAULT_STALE_DAYS: u32 = 30;

/// What the dashboard is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The day it is: tasks due before it are overdue.
    pub today: Date,
    /// Customers last contacted more than this many days before `today`
    /// (or never) are listed as not contacted.
    pub stale_days: u32,
}

/// Every figure of the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// The day it was computed for, `YYYY-MM-DD`.
    pub today: String,
    /// Customers by lifecycle stage.
    pub pipeline: Vec<StageFigures>,
    /// Open and overdue tasks per assignee.
    pub workload: Vec<Workload>,
    /// Open tasks due before `today`, the most overdue first.
    pub overdue: Vec<OverdueTask>,
    /// Customers not contacted lately.
    pub not_contacted: NotContacted,
    /// Customer satisfaction from feedback submissions.
    pub csat: Csat,
}

/// The customers in one lifecycle stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageFigures {
    pub stage: String,
    /// How many customers are in it.
    pub customers: u64,
    /// The sum of their lead scores.
    pub score: i64,
}

/// One person's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// The assignee's base58 key; `None` for tasks nobody is on.
    pub assignee: Option<String>,
    /// Tasks not done or cancelled.
    pub open: u64,
    /// Of those, the ones past their due date.
    pub overdue: u64,
}

/// An open task past its due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverdueTask {
    pub id: DocumentId,
    pub title: String,
    /// `YYYY-MM-DD`.
    pub due: String,
    /// Days from `due` to today, at least 1.
    pub days_overdue: i64,
    pub status: String,
    pub priority: String,
    pub assignees: Vec<String>,
    /// The linked customer document.
    pub customer: Option<String>,
}

/// Customers not contacted for more than `days` days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotContacted {
    pub days: u32,
    pub customers: Vec<StaleCustomer>,
}

/// A customer not contacted lately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleCustomer {
    pub id: DocumentId,
    pub name: String,
    pub stage: String,
    /// `YYYY-MM-DD`, or `None` if never.
    pub last_contact: Option<String>,
    /// Days since the last contact; `None` if never.
    pub days_since: Option<i64>,
}

/// Customer satisfaction from feedback submissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Csat {
    /// Feedback tasks with a score from 1 to 5.
    pub responses: u64,
    /// The sum of their scores.
    pub sum: i64,
    /// `sum / responses`; `None` without responses.
    pub average: Option<f64>,
    /// Feedback tasks without a score in range, left out of the average.
    pub unscored: u64,
}

/// What a record without a stage, status or priority holds, as the model
/// reads it.
const DEFAULT_STAGE: &str = "lead";
const DEFAULT_STATUS: &str = "open";
const DEFAULT_PRIORITY: &str = "normal";

/// The dashboard of `entries` (as [`Repo::index`] or [`index`] returns
/// them) on `options.today`. Entries that are neither customers nor tasks
/// are skipped.
pub fn compute(entries: &[(DocumentId, IndexEntry)], options: &Options) -> Dashboard {
    let today = options.today.days_since_epoch();
    let mut figures = Figures::default();
    for (id, entry) in entries.iter().filter(|(_, entry)| !entry.archived) {
        match entry.kind {
            Kind::Customer => figures.add_customer(*id, entry, today, options.stale_days),
            Kind::Task => figures.add_task(*id, entry, today),
            Kind::Requirements | Kind::Thread => {}
        }
    }
    figures.finish(options)
}

/// The replica's index for [`compute`]. If some entry was written by an
/// earlier version (it lacks fields the dashboard reads), the index is
/// rebuilt from the documents first, once.
pub fn index(repo: &Repo) -> Result<Vec<(DocumentId, IndexEntry)>, ClientError> {
    let entries = repo.index()?;
    if entries.iter().all(|(_, entry)| entry.is_current()) {
        return Ok(entries);
    }
    repo.rebuild_index()?;
    repo.index()
}

/// The figures as they are gathered.
#[derive(Default)]
struct Figures<'a> {
    /// Customers and the sum of their scores, by stage.
    stages: BTreeMap<&'a str, (u64, i64)>,
    /// Open and overdue tasks, by assignee.
    workload: BTreeMap<Option<&'a str>, (u64, u64)>,
    overdue: Vec<OverdueTask>,
    stale: Vec<StaleCustomer>,
    csat: Csat,
}

impl<'a> Figures<'a> {
    fn add_customer(&mut self, id: DocumentId, entry: &'a IndexEntry, today: i64, stale_days: u32) {
        let stage = entry.stage.as_deref().unwrap_or(DEFAULT_STAGE);
        let (count, score) = self.stages.entry(stage).or_default();
        *count += 1;
        *score = score.saturating_add(entry.score.unwrap_or(0));

        if matches!(Stage::from(stage), Stage::Lost | Stage::Churned) {
            return;
        }
        let last: Option<Date> = entry.last_contact.as_deref().and_then(|d| d.parse().ok());
        let days_since = last.map(|last| today - last.days_since_epoch());
        if days_since.is_none_or(|days| days > i64::from(stale_days)) {
            self.stale.push(StaleCustomer {
                id,
                name: entry.title.clone(),
                stage: stage.to_owned(),
                last_contact: last.map(|d| d.to_string()),
                days_since,
            });
        }
    }

    fn add_task(&mut self, id: DocumentId, entry: &'a IndexEntry, today: i64) {
        if entry.tags.iter().any(|tag| tag == FEEDBACK_TAG) {
            match entry.csat.filter(|score| CSAT_SCALE.contains(score)) {
                Some(score) => {
                    self.csat.responses += 1;
                    self.csat.sum += score;
                }
                None => self.csat.unscored += 1,
            }
        }
        let status = entry.status.as_deref().unwrap_or(DEFAULT_STATUS);
        if matches!(Status::from(status), Status::Done | Status::Cancelled) {
            return;
        }
        let due: Option<Date> = entry.due.as_deref().and_then(|d| d.parse().ok());
        let days_overdue = due
            .map(|due| today - due.days_since_epoch())
            .filter(|d| *d > 0);
        let unassigned = entry.assignees.is_empty().then_some(None);
        let assignees = entry.assignees.iter().map(|a| Some(a.as_str()));
        for assignee in assignees.chain(unassigned) {
            let (open, overdue) = self.workload.entry(assignee).or_default();
            *open += 1;
            *overdue += u64::from(days_overdue.is_some());
        }
        if let (Some(due), Some(days_overdue)) = (due, days_overdue) {
            self.overdue.push(OverdueTask {
                id,
                title: entry.title.clone(),
                due: due.to_string(),
                days_overdue,
                status: status.to_owned(),
                priority: entry
                    .priority
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PRIORITY.to_owned()),
                assignees: entry.assignees.clone(),
                customer: entry.customer.clone(),
            });
        }
    }

    fn finish(mut self, options: &Options) -> Dashboard {
        let mut pipeline: Vec<StageFigures> = Stage::KNOWN
            .iter()
            .map(|stage| {
                let (customers, score) = self.stages.remove(stage.as_str()).unwrap_or_default();
                StageFigures {
                    stage: stage.as_str().to_owned(),
                    customers,
                    score,
                }
            })
            .collect();
        pipeline.extend(
            self.stages
                .into_iter()
                .map(|(stage, (customers, score))| StageFigures {
                    stage: stage.to_owned(),
                    customers,
                    score,
                }),
        );
        // `None` sorts first in a BTreeMap; the unassigned row goes last.
        let mut workload: Vec<Workload> = self
            .workload
            .into_iter()
            .map(|(assignee, (open, overdue))| Workload {
                assignee: assignee.map(str::to_owned),
                open,
                overdue,
            })
            .collect();
        let unassigned_first = workload.first().is_some_and(|w| w.assignee.is_none());
        workload.rotate_left(usize::from(unassigned_first));
        self.overdue.sort_by(|a, b| {
            (Reverse(a.days_overdue), &a.title, &a.id).cmp(&(
                Reverse(b.days_overdue),
                &b.title,
                &b.id,
            ))
        });
        // Never contacted first, then the longest silence.
        let silence = |c: &StaleCustomer| Reverse(c.days_since.unwrap_or(i64::MAX));
        self.stale
            .sort_by(|a, b| (silence(a), &a.name, &a.id).cmp(&(silence(b), &b.name, &b.id)));
        let mut csat = self.csat;
        // Scores are 1 to 5 and counts far below 2^52: the division is exact
        // enough for an average.
        #[allow(clippy::cast_precision_loss)]
        {
            csat.average = (csat.responses > 0).then(|| csat.sum as f64 / csat.responses as f64);
        }
        Dashboard {
            today: options.today.to_string(),
            pipeline,
            workload,
            overdue: self.overdue,
            not_contacted: NotContacted {
                days: options.stale_days,
                customers: self.stale,
            },
            csat,
        }
    }
}

#[cfg(test)]
mod tests {
    use rapport_protocol::ids::UnixMillis;

    use super::*;
    use crate::index::ENTRY_VERSION;

    /// An entry of `kind` with every other field at its default.
    fn entry(kind: Kind, title: &str) -> IndexEntry {
        let bytes = format!(r#"{{"kind":"{kind}","version":{ENTRY_VERSION}}}"#);
        let mut entry = IndexEntry::from_bytes(bytes.as_bytes()).expect("a valid entry");
        entry.title = title.into();
        entry
    }

    fn customer(name: &str, stage: Option<&str>, score: i64, last: Option<&str>) -> IndexEntry {
        IndexEntry {
            stage: stage.map(Into::into),
            score: Some(score),
            last_contact: last.map(Into::into),
            ..entry(Kind::Customer, name)
        }
    }

    fn task(title: &str, status: Option<&str>, due: Option<&str>, who: &[&str]) -> IndexEntry {
        IndexEntry {
            status: status.map(Into::into),
            due: due.map(Into::into),
            assignees: who.iter().map(|w| (*w).to_owned()).collect(),
            ..entry(Kind::Task, title)
        }
    }

    fn feedback(score: Option<i64>) -> IndexEntry {
        IndexEntry {
            tags: vec![FEEDBACK_TAG.into()],
            csat: score,
            status: Some("done".into()),
            ..entry(Kind::Task, "feedback")
        }
    }

    fn ids(entries: Vec<IndexEntry>) -> Vec<(DocumentId, IndexEntry)> {
        (0u8..)
            .zip(entries)
            .map(|(n, e)| (DocumentId::from_bytes([n; 16]), e))
            .collect()
    }

    fn options(today: &str, stale_days: u32) -> Options {
        Options {
            today: today.parse().expect("a valid date in the test"),
            stale_days,
        }
    }

    fn stage<'a>(figures: &'a Dashboard, name: &str) -> &'a StageFigures {
        let found = figures.pipeline.iter().find(|s| s.stage == name);
        found.unwrap_or_else(|| panic!("no stage {name} in {:?}", figures.pipeline))
    }

    #[test]
    fn pipeline_counts_and_sums_scores_by_stage() {
        let entries = ids(vec![
            customer("A", Some("lead"), 10, None),
            customer("B", Some("lead"), 5, None),
            customer("C", Some("won"), 90, None),
            customer("D", None, 7, None), // no stage reads as lead
            customer("E", Some("on-hold"), 3, None),
            task("not a customer", None, None, &[]),
        ]);
        let figures = compute(&entries, &options("2025-03-10", 30));
        // lead: A, B, D → 3 customers, 10 + 5 + 7 = 22.
        assert_eq!(
            (
                stage(&figures, "lead").customers,
                stage(&figures, "lead").score
            ),
            (3, 22)
        );
        assert_eq!(
            (
                stage(&figures, "won").customers,
                stage(&figures, "won").score
            ),
            (1, 90)
        );
        assert_eq!(stage(&figures, "proposal").customers, 0);
        let names: Vec<&str> = figures.pipeline.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(
            names,
            [
                "lead", "prospect", "proposal", "won", "lost", "active", "churned", "on-hold"
            ]
        );
    }

    #[test]
    fn workload_and_overdue_count_open_tasks_only() {
        let entries = ids(vec![
            // Overdue by 9 days, for ann and bob.
            task(
                "Invoice",
                Some("in_progress"),
                Some("2025-03-01"),
                &["ann", "bob"],
            ),
            // Due today: open, not overdue.
            task("Call", Some("open"), Some("2025-03-10"), &["ann"]),
            // Past due but done: neither open nor overdue.
            task("Offer", Some("done"), Some("2025-01-01"), &["ann"]),
            task("Dropped", Some("cancelled"), Some("2025-01-01"), &["bob"]),
            // No status reads as open; overdue by 1 day, nobody on it.
            task("Logo", None, Some("2025-03-09"), &[]),
            // A status a newer version wrote counts as open.
            task("Wait", Some("waiting"), None, &["bob"]),
        ]);
        let figures = compute(&entries, &options("2025-03-10", 30));
        let rows: Vec<(Option<&str>, u64, u64)> = figures
            .workload
            .iter()
            .map(|w| (w.assignee.as_deref(), w.open, w.overdue))
            .collect();
        // ann: Invoice (overdue), Call → 2 open, 1 overdue.
        // bob: Invoice (overdue), Wait → 2 open, 1 overdue.
        // unassigned: Logo (overdue) → 1, 1; listed last.
        assert_eq!(
            rows,
            [(Some("ann"), 2, 1), (Some("bob"), 2, 1), (None, 1, 1)]
        );
        let overdue: Vec<(&str, i64)> = figures
            .overdue
            .iter()
            .map(|t| (t.title.as_str(), t.days_overdue))
            .collect();
        assert_eq!(overdue, [("Invoice", 9), ("Logo", 1)]);
        assert_eq!(figures.overdue[0].status, "in_progress");
        assert_eq!(figures.overdue[1].status, "open");
    }

    #[test]
    fn not_contacted_means_more_than_n_days_or_never_and_not_lost() {
        let entries = ids(vec![
            customer("Exactly 30", Some("active"), 0, Some("2025-02-08")),
            customer("31 days", Some("active"), 0, Some("2025-02-07")),
            customer("Leap", Some("prospect"), 0, Some("2024-02-29")),
            customer("Never", Some("lead"), 0, None),
            customer("Lost long ago", Some("lost"), 0, Some("2020-01-01")),
            customer("Churned, never", Some("churned"), 0, None),
            customer("Yesterday", Some("won"), 0, Some("2025-03-09")),
        ]);
        let figures = compute(&entries, &options("2025-03-10", 30));
        let stale: Vec<(&str, Option<i64>)> = figures
            .not_contacted
            .customers
            .iter()
            .map(|c| (c.name.as_str(), c.days_since))
            .collect();
        // Exactly 30: 2025-02-08 → 2025-03-10 is 20 + 10 = 30 days, not more
        // than 30. 31 days: one more. Leap: 2024-02-29 → 2025-02-28 is 365
        // days (no Feb 29 between), → 2025-03-10 is 10 more: 375.
        assert_eq!(
            stale,
            [("Never", None), ("Leap", Some(375)), ("31 days", Some(31))]
        );
        assert_eq!(figures.not_contacted.days, 30);

        let none = compute(&entries, &options("2025-03-10", 400));
        assert_eq!(none.not_contacted.customers.len(), 1, "only Never");
    }

    #[test]
    fn csat_averages_scores_in_range_from_feedback_tasks() {
        let mut untagged = task("not feedback", Some("done"), None, &[]);
        untagged.csat = Some(1);
        let entries = ids(vec![
            feedback(Some(5)),
            feedback(Some(4)),
            feedback(Some(2)),
            feedback(Some(3)),
            feedback(Some(9)), // out of range
            feedback(None),    // no score
            untagged,
        ]);
        let figures = compute(&entries, &options("2025-03-10", 30));
        // (5 + 4 + 2 + 3) / 4 = 14 / 4 = 3.5; 9 and the missing one unscored.
        assert_eq!(
            figures.csat,
            Csat {
                responses: 4,
                sum: 14,
                average: Some(3.5),
                unscored: 2
            }
        );
        // Every task here is done, so none adds workload.
        assert!(figures.workload.is_empty());
    }

    #[test]
    fn an_empty_replica_has_empty_figures() {
        let figures = compute(&[], &options("2025-03-10", 30));
        assert_eq!(figures.today, "2025-03-10");
        assert!(figures.pipeline.iter().all(|s| s.customers == 0));
        assert!(figures.workload.is_empty() && figures.overdue.is_empty());
        assert_eq!(figures.csat, Csat::default());
    }

    #[test]
    fn defaults_are_the_models() {
        assert_eq!(DEFAULT_STAGE, Stage::default().as_str());
        assert_eq!(DEFAULT_STATUS, Status::default().as_str());
        assert_eq!(
            DEFAULT_PRIORITY,
            rapport_model::Priority::default().as_str()
        );
    }

    #[test]
    fn days_and_dates_agree() {
        for (text, days) in [
            ("1970-01-01", 0),
            ("2000-03-01", 11_017),
            ("1969-12-31", -1),
        ] {
            let date: Date = text.parse().expect("valid");
            assert_eq!(date.days_since_epoch(), days, "{text}");
            assert_eq!(Date::from_days_since_epoch(days), Some(date), "{text}");
        }
        let millis = 11_017 * 86_400_000 + 86_399_999;
        assert_eq!(
            Date::utc(UnixMillis(millis)),
            Some("2000-03-01".parse().expect("valid"))
        );
    }
}
