//! Notifications: the relay follows its own change feed and turns new
//! mentions in comments and new assignees of tasks into notifications for
//! the members concerned, and once an hour looks for open tasks due today.
//! Each is kept per member (`storage::notifications`) with the feed cursor
//! it came from, in one transaction, so that it is made once across
//! restarts; `rapport inbox` lists them, and members who gave an address
//! get an e-mail when the operator set up SMTP (`mail`). Nobody is told
//! about a record they may not see.

pub(crate) mod api;
mod mail;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::{Automerge, ChangeHash};
use rapport_model::api::Notification;
use rapport_model::{Date, Header, Kind, Task, Thread};
use rapport_protocol::ids::{DocumentId, PublicKey, UnixMillis};
use tokio::sync::watch;
use tracing::warn;

use crate::access::Access;
use crate::feed::{Write, headline};
use crate::relay::{Relay, lock, now};
use crate::storage::{FeedRow, StoreError};
pub use mail::MailError;
pub(crate) use mail::Mailer;

/// Feed rows looked at in one step.
const STEP_ROWS: usize = 256;
/// How often the tasks due today are looked for.
const DUE_EVERY: Duration = Duration::from_secs(3600);
/// How long the notifier lets the feed grow after a change before it
/// looks.
const GATHER: Duration = Duration::from_millis(250);

/// How much of a comment a notification quotes.
const QUOTED_CHARS: usize = 280;

/// Runs until `stop`: a step whenever the feed grows, and at least every
/// minute.
pub(crate) async fn run(
    relay: Arc<Relay>,
    mailer: Option<Mailer>,
    base_url: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = relay.store().feed_watch();
    let state = Arc::new(std::sync::Mutex::new(Notifier::default()));
    loop {
        if *stop.borrow() {
            return;
        }
        let stepping = Arc::clone(&relay);
        let notifier = Arc::clone(&state);
        let step = tokio::task::spawn_blocking(move || {
            notifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .step(&stepping)
        })
        .await;
        let more = match step {
            Ok(Ok((new, more))) => {
                if let Some(mailer) = &mailer {
                    mailer.send_all(&relay, &base_url, new).await;
                }
                more
            }
            Ok(Err(e)) => {
                warn!(error = %e, "notifications: cannot read or store");
                false
            }
            Err(e) => {
                warn!(error = %e, "notifications: the step failed");
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = ticks.changed() => {
                // Typing makes a feed row a keystroke: look at them in
                // batches, not once each.
                tokio::select! {
                    () = tokio::time::sleep(GATHER) => {}
                    _ = stop.changed() => {}
                }
            }
            _ = stop.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

type Made = Vec<(PublicKey, Notification)>;

/// The kind of each document seen, `None` for a document that is no
/// record (no header: one an application of its own keeps in the
/// workspace). A record's kind never changes, its header comes with its
/// first change, and customers, requirements docs and documents that are
/// no record tell nobody anything, so their writes are passed over unread
/// (a long one costs most to load).
type Kinds = std::collections::HashMap<DocumentId, Option<Kind>>;

/// How often the notifier's place in the feed is stored when nothing else
/// is: reading a little of the feed again after a restart makes nothing
/// twice (a notification's id is stored with it), so the place need not be
/// written with every change.
const CURSOR_SAVED_EVERY: Duration = Duration::from_secs(30);

/// What the notifier keeps between steps.
#[derive(Debug, Default)]
struct Notifier {
    kinds: Kinds,
    /// Where it is in the feed; read from storage at the first step.
    cursor: Option<u64>,
    saved_at: Option<Instant>,
    due_checked: Option<Instant>,
}

impl Notifier {
    /// Reads the next rows of the feed (and once an hour today's tasks)
    /// and stores what they give: a write only when there are
    /// notifications, or the place in the feed is due to be kept.
    /// Returns the new notifications and whether more rows wait. Blocking.
    fn step(&mut self, relay: &Relay) -> Result<(Made, bool), StoreError> {
        let store = relay.store();
        let cursor = match self.cursor {
            Some(cursor) => cursor,
            None => store.notify_cursor()?,
        };
        let rows = match store.feed_since(cursor, STEP_ROWS)? {
            Some(rows) => rows,
            None => {
                warn!(
                    cursor,
                    "notifications: the change feed no longer holds where the notifier was; changes in between told nobody"
                );
                store.feed_since(0, STEP_ROWS)?.unwrap_or_default()
            }
        };
        let mut made = Vec::new();
        for row in &rows {
            made.extend(from_row(relay, &mut self.kinds, row));
        }
        let due = self.due_checked.is_none_or(|at| at.elapsed() >= DUE_EVERY);
        if due {
            made.extend(due_today(relay, now()));
            self.due_checked = Some(Instant::now());
        }
        let next = rows.last().map_or(cursor, |row| row.cursor);
        let keep_place = next != cursor
            && self
                .saved_at
                .is_none_or(|at| at.elapsed() >= CURSOR_SAVED_EVERY);
        let new = if made.is_empty() && !keep_place {
            Vec::new()
        } else {
            self.saved_at = Some(Instant::now());
            store.save_notifications(made, Some(next))?
        };
        self.cursor = Some(next);
        Ok((new, rows.len() == STEP_ROWS))
    }
}

/// Whether `key` may see `document` (of a workspace: only its members may).
fn may_see(relay: &Relay, key: &PublicKey, document: DocumentId) -> bool {
    lock(&relay.workspaces).access(key, document) != Access::None
}

/// What one durable write of changes tells people.
fn from_row(relay: &Relay, kinds: &mut Kinds, row: &FeedRow) -> Made {
    let Some(ws) = lock(&relay.workspaces)
        .home_of(row.document)
        .map(str::to_owned)
    else {
        return Vec::new();
    };
    if matches!(
        kinds.get(&row.document),
        Some(None | Some(Kind::Customer | Kind::Requirements))
    ) {
        return Vec::new();
    }
    let Ok(doc) = relay.store().load_automerge(row.document) else {
        return Vec::new();
    };
    let Ok(header) = Header::read(&doc) else {
        // Written whole with its first change, a record has its header by
        // now: this document is none.
        if !doc.is_empty() {
            kinds.insert(row.document, None);
        }
        return Vec::new();
    };
    kinds.insert(row.document, Some(header.kind));
    // Each author's part of the write as a whole, however many changes it
    // carried: the document at the heads it built on, and at the heads it
    // made.
    let mut made = Vec::new();
    for Write { by, before, after } in Write::by_author(relay, row, &doc) {
        let (Some(&hash), Ok(before), Ok(after)) =
            (after.last(), doc.fork_at(&before), doc.fork_at(&after))
        else {
            continue;
        };
        let about = Happened {
            relay,
            ws: &ws,
            document: row.document,
            by,
            at: row.at,
            hash,
        };
        match header.kind {
            Kind::Thread => made.extend(about.mentions(&before, &after)),
            Kind::Task => made.extend(about.assignments(&before, &after)),
            Kind::Customer | Kind::Requirements => {}
        }
    }
    made
}

/// One author's part of a write to one document, as the notifier looks at
/// it; `hash` is the last of the heads it made (its one change, most
/// often).
struct Happened<'a> {
    relay: &'a Relay,
    ws: &'a str,
    document: DocumentId,
    by: Option<PublicKey>,
    at: u64,
    hash: ChangeHash,
}

impl Happened<'_> {
    fn notification(
        &self,
        id: String,
        kind: &str,
        record: DocumentId,
        text: String,
    ) -> Notification {
        let title = self
            .relay
            .store()
            .load_automerge(record)
            .map(|doc| headline(&doc).1)
            .unwrap_or_default();
        Notification {
            id,
            kind: kind.to_owned(),
            record,
            title,
            by: self.by,
            by_name: self
                .by
                .and_then(|key| lock(&self.relay.workspaces).member_name(self.ws, &key)),
            text,
            at: self.at,
            read: false,
        }
    }

    /// Whether `key` should hear of this: not its own doing, and it may
    /// see both the document and the record.
    fn tells(&self, key: &PublicKey, record: DocumentId) -> bool {
        Some(*key) != self.by
            && may_see(self.relay, key, self.document)
            && may_see(self.relay, key, record)
    }

    /// The people mentioned in comments this change added.
    fn mentions(&self, before: &Automerge, after: &Automerge) -> Made {
        let Ok(thread) = Thread::read(after) else {
            return Vec::new();
        };
        let Ok(record) = thread.record.parse::<DocumentId>() else {
            return Vec::new();
        };
        let old: BTreeSet<String> = Thread::read(before)
            .map(|t| t.comments.into_iter().map(|c| c.id).collect())
            .unwrap_or_default();
        let mut made = Vec::new();
        for comment in thread.comments.iter().filter(|c| !old.contains(&c.id)) {
            let text: String = comment.body.chars().take(QUOTED_CHARS).collect();
            let people: BTreeSet<PublicKey> = comment
                .mentions
                .iter()
                .filter_map(|k| k.parse().ok())
                .collect();
            for key in people.into_iter().filter(|key| self.tells(key, record)) {
                let id = format!("mention:{}:{}", self.document, comment.id);
                made.push((key, self.notification(id, "mention", record, text.clone())));
            }
        }
        made
    }

    /// The people this change made assignees of a task.
    fn assignments(&self, before: &Automerge, after: &Automerge) -> Made {
        let Ok(task) = Task::read(after) else {
            return Vec::new();
        };
        let old: BTreeSet<String> = Task::read(before)
            .map(|t| t.assignees.into_iter().collect())
            .unwrap_or_default();
        let mut made = Vec::new();
        for key in task.assignees.iter().filter(|k| !old.contains(*k)) {
            let Ok(key) = key.parse::<PublicKey>() else {
                continue;
            };
            if self.tells(&key, self.document) {
                let id = format!("assigned:{}:{}", self.document, self.hash);
                made.push((
                    key,
                    self.notification(id, "assigned", self.document, String::new()),
                ));
            }
        }
        made
    }
}

/// Open tasks due on the day of `at` (UTC), for each assignee who may see
/// them; one notification per task, assignee and day.
fn due_today(relay: &Relay, at: UnixMillis) -> Made {
    let Some(today) = Date::utc(at) else {
        return Vec::new();
    };
    // Every listed document but comment threads.
    let listed: Vec<DocumentId> = {
        let workspaces = lock(&relay.workspaces);
        workspaces
            .ids()
            .filter_map(|ws| workspaces.get(ws).ok())
            .flat_map(|w| w.documents.iter())
            .filter(|(_, info)| info.thread_of.is_none())
            .map(|(doc, _)| *doc)
            .collect()
    };
    let mut made = Vec::new();
    for id in listed {
        let Ok(doc) = relay.store().load_automerge(id) else {
            continue;
        };
        if !Header::read(&doc).is_ok_and(|h| h.kind == Kind::Task) {
            continue;
        }
        let Ok(task) = Task::read(&doc) else { continue };
        if task.due != Some(today) || task.status.as_str() == "done" {
            continue;
        }
        for key in task
            .assignees
            .iter()
            .filter_map(|k| k.parse::<PublicKey>().ok())
        {
            if may_see(relay, &key, id) {
                made.push((
                    key,
                    Notification {
                        id: format!("due:{id}:{today}"),
                        kind: "due-today".into(),
                        record: id,
                        title: task.title.clone(),
                        by: None,
                        by_name: None,
                        text: String::new(),
                        at: at.0,
                        read: false,
                    },
                ));
            }
        }
    }
    made
}
