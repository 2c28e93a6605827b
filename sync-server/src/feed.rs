//! `GET /api/workspaces/{ws}/changes?since=CURSOR`: the change feed, what
//! an integration (a billing tool, a chat bot) follows. Which documents
//! changed, by whom, which fields, filtered to what the caller may read at
//! the moment it reads. A JSON page (`limit`, and `wait` seconds to wait
//! for something new), or server-sent events when asked with `Accept:
//! text/event-stream` (each event's id is its cursor, so `Last-Event-ID`
//! resumes). Cursors are the stored feed's sequence numbers
//! (`storage::feed`): they hold across restarts.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rapport_model::api::{ChangeEntry, ChangePage};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde::Deserialize;

use crate::access::Access;
use crate::relay::{Relay, lock};
use crate::state::AppState;
use crate::storage::FeedRow;
use crate::workspace::{ApiError, Role, WorkspaceError, caller, require};

/// The most entries one page holds.
const MAX_LIMIT: usize = 1_000;
/// The longest a JSON page waits for something new.
const MAX_WAIT: Duration = Duration::from_secs(25);
/// Rows read from storage at a time while filtering.
const SCAN: usize = 512;

#[derive(Debug, Deserialize)]
pub(crate) struct FeedQuery {
    /// A cursor from an earlier entry or page, `0` for the oldest kept,
    /// or `now` for only what comes next.
    since: Option<String>,
    limit: Option<usize>,
    /// Seconds to wait when nothing is new yet (at most 25).
    wait: Option<u64>,
}

pub(crate) async fn changes(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    Query(query): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Client, "follow changes")?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let since = cursor(&s.relay, resume.or(query.since).as_deref())?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let mut ticks = s.relay.store().feed_watch();
    // A cursor the feed no longer reaches is said before anything else,
    // to a stream as to a page.
    let mut page = read(&s.relay, &ws, key, since, limit).await?;
    if streaming {
        let stream = stream(
            Arc::clone(&s.relay),
            ws,
            key,
            page,
            ticks,
            s.shutdown.clone(),
        );
        return Ok(stream.into_response());
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    while page.changes.is_empty() && tokio::time::Instant::now() < deadline {
        if tokio::time::timeout_at(deadline, ticks.changed())
            .await
            .is_err()
        {
            break;
        }
        // From where the last read stopped, not from `since` again.
        let from = page.next.parse().unwrap_or(since);
        page = read(&s.relay, &ws, key, from, limit).await?;
    }
    Ok(Json(page).into_response())
}

/// The cursor `text` names.
fn cursor(relay: &Relay, text: Option<&str>) -> Result<u64, ApiError> {
    match text {
        None => Ok(0),
        Some("now") => Ok(relay.store().feed_end()),
        Some(text) => text.parse().map_err(|_| {
            WorkspaceError::Invalid(format!(
                "`{text}` is not a cursor: use one from an entry's `cursor` or a page's `next`, `0`, or `now`"
            ))
            .into()
        }),
    }
}

/// The entries after `since` that `key` may read, up to `limit`.
async fn read(
    relay: &Arc<Relay>,
    ws: &str,
    key: PublicKey,
    since: u64,
    limit: usize,
) -> Result<ChangePage, ApiError> {
    let (relay, ws) = (Arc::clone(relay), ws.to_owned());
    tokio::task::spawn_blocking(move || page(&relay, &ws, key, since, limit))
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the feed failed".into(),
            )
        })?
}

fn page(
    relay: &Relay,
    ws: &str,
    key: PublicKey,
    since: u64,
    limit: usize,
) -> Result<ChangePage, ApiError> {
    let store = relay.store();
    let mut next = since;
    let mut changes = Vec::new();
    let mut docs: HashMap<DocumentId, Option<Automerge>> = HashMap::new();
    while changes.len() < limit {
        let rows = store
            .feed_since(next, SCAN)
            .map_err(WorkspaceError::from)?
            .ok_or_else(|| {
                ApiError(
                    StatusCode::GONE,
                    format!(
                        "the feed no longer reaches back to cursor {since}; start again with since=now and read the documents themselves"
                    ),
                )
            })?;
        let Some(last) = rows.last() else { break };
        let last = last.cursor;
        // Who may read what, asked once for the batch.
        let readable: std::collections::HashSet<DocumentId> = {
            let workspaces = lock(&relay.workspaces);
            rows.iter()
                .map(|row| row.document)
                .filter(|doc| {
                    workspaces.home_of(*doc) == Some(ws)
                        && workspaces.access(&key, *doc) != Access::None
                })
                .collect()
        };
        for row in rows {
            if changes.len() == limit {
                break;
            }
            next = row.cursor;
            if !readable.contains(&row.document) {
                continue;
            }
            let doc = docs
                .entry(row.document)
                .or_insert_with(|| store.load_automerge(row.document).ok());
            if let Some(doc) = doc {
                changes.push(entry(relay, ws, &row, doc));
            }
        }
        if changes.len() < limit {
            next = last;
        }
    }
    Ok(ChangePage {
        changes,
        next: next.to_string(),
    })
}

/// One stored write (a row of the feed) as the document holds it, or the
/// part of one made by one author.
#[derive(Debug, PartialEq)]
pub(crate) struct Write<A = Option<PublicKey>> {
    /// Who made it.
    pub(crate) by: A,
    /// The heads it built on, sorted.
    pub(crate) before: Vec<ChangeHash>,
    /// The heads it made, sorted; empty if `doc` holds none of it.
    pub(crate) after: Vec<ChangeHash>,
}

impl Write {
    /// The write as a whole, credited to the first of its changes whose
    /// actor the relay knows.
    pub(crate) fn of(relay: &Relay, row: &FeedRow, doc: &Automerge) -> Self {
        let written = written(row, doc);
        let by = written
            .iter()
            .find_map(|change| relay.key_of_actor(change.actor_id().to_bytes()));
        let (before, after) = bounds(written.iter().map(|c| (c.hash(), c.deps())));
        Self { by, before, after }
    }

    /// The write split by who made each change, in the order each first
    /// appears. Most often one part: a write is one peer's message, but
    /// changes queued from another peer (waiting for a dependency this
    /// message brought) land with it.
    pub(crate) fn by_author(relay: &Relay, row: &FeedRow, doc: &Automerge) -> Vec<Self> {
        let written = written(row, doc);
        let authored = written.iter().map(|change| {
            let by = relay.key_of_actor(change.actor_id().to_bytes());
            (change.hash(), change.deps(), by)
        });
        split_by_author(authored.collect())
    }
}

/// The changes of `row` that `doc` holds, in the row's order.
fn written(row: &FeedRow, doc: &Automerge) -> Vec<automerge::Change> {
    row.changes
        .iter()
        .filter_map(|hash| doc.get_change_by_hash(hash))
        .collect()
}

/// Changes (hash, dependencies) of one author.
type Part<'a> = Vec<(ChangeHash, &'a [ChangeHash])>;

/// Changes (hash, dependencies, author) as one [`Write`] per author.
fn split_by_author<A: PartialEq>(changes: Vec<(ChangeHash, &[ChangeHash], A)>) -> Vec<Write<A>> {
    let mut parts: Vec<(A, Part<'_>)> = Vec::new();
    for (hash, deps, by) in changes {
        match parts.iter_mut().find(|(author, _)| *author == by) {
            Some((_, part)) => part.push((hash, deps)),
            None => parts.push((by, vec![(hash, deps)])),
        }
    }
    parts
        .into_iter()
        .map(|(by, part)| {
            let (before, after) = bounds(part.into_iter());
            Write { by, before, after }
        })
        .collect()
}

/// The heads a set of changes (hash, dependencies) built on (their
/// dependencies outside the set) and the heads it made (its changes no
/// other of it depends on), each sorted.
fn bounds<'a>(
    changes: impl Iterator<Item = (ChangeHash, &'a [ChangeHash])> + Clone,
) -> (Vec<ChangeHash>, Vec<ChangeHash>) {
    let ours: HashSet<ChangeHash> = changes.clone().map(|(hash, _)| hash).collect();
    let mut before = BTreeSet::new();
    let mut depended = HashSet::new();
    for (_, deps) in changes {
        for dep in deps {
            if ours.contains(dep) {
                depended.insert(*dep);
            } else {
                before.insert(*dep);
            }
        }
    }
    let after: BTreeSet<ChangeHash> = ours.difference(&depended).copied().collect();
    (before.into_iter().collect(), after.into_iter().collect())
}

/// What one stored write did to `doc`: the fields its changes touched,
/// found by one diff from the heads the write built on to the heads it
/// made, however many changes it carried (a document written whole at
/// once, say, is one write of all its changes).
fn entry(relay: &Relay, ws: &str, row: &FeedRow, doc: &Automerge) -> ChangeEntry {
    let Write { by, before, after } = Write::of(relay, row, doc);
    let mut fields = BTreeSet::new();
    if !after.is_empty() {
        for patch in doc.diff(&before, &after) {
            let field = match patch.path.first() {
                Some((_, automerge::Prop::Map(key))) => Some(key.clone()),
                Some(_) => None,
                None => match patch.action {
                    automerge::PatchAction::PutMap { key, .. }
                    | automerge::PatchAction::DeleteMap { key } => Some(key),
                    _ => None,
                },
            };
            fields.extend(field);
        }
    }
    // `kind` and `schema` are repeated by every write.
    fields.remove("kind");
    fields.remove("schema");
    let (kind, title) = headline(doc);
    let by_name = by.and_then(|key| lock(&relay.workspaces).member_name(ws, &key));
    ChangeEntry {
        cursor: row.cursor.to_string(),
        document: row.document,
        kind,
        title,
        by,
        by_name,
        at: row.at,
        fields: fields.into_iter().collect(),
    }
}

/// A document's `kind`, and its title (a customer's name); empty strings
/// where it has none.
pub(crate) fn headline(doc: &Automerge) -> (String, String) {
    let text = |name: &str| match doc.get(ROOT, name) {
        Ok(Some((value, id))) => match value {
            automerge::Value::Scalar(s) => s.as_str().map(str::to_owned),
            automerge::Value::Object(_) => doc.text(id).ok(),
        },
        _ => None,
    };
    let kind = text("kind").unwrap_or_default();
    let title = text(if kind == "customer" { "name" } else { "title" }).unwrap_or_default();
    (kind, title)
}

/// The feed as server-sent events, from `since` on, for as long as the
/// caller stays a member.
fn stream(
    relay: Arc<Relay>,
    ws: String,
    key: PublicKey,
    first: ChangePage,
    ticks: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    struct Follow {
        relay: Arc<Relay>,
        ws: String,
        key: PublicKey,
        next: u64,
        queued: VecDeque<ChangeEntry>,
        ticks: tokio::sync::watch::Receiver<u64>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        done: bool,
    }
    let follow = Follow {
        relay,
        ws,
        key,
        next: first.next.parse().unwrap_or(u64::MAX),
        queued: first.changes.into(),
        ticks,
        shutdown,
        done: false,
    };
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if f.done || *f.shutdown.borrow() {
                return None;
            }
            if let Some(entry) = f.queued.pop_front() {
                let event = Event::default()
                    .id(entry.cursor.clone())
                    .event("change")
                    .json_data(&entry)
                    .unwrap_or_default();
                return Some((Ok(event), f));
            }
            let page = match read(&f.relay, &f.ws, f.key, f.next, MAX_LIMIT).await {
                Ok(page) => page,
                Err(ApiError(_, reason)) => {
                    f.done = true;
                    return Some((Ok(Event::default().event("error").data(reason)), f));
                }
            };
            f.next = page.next.parse().unwrap_or(f.next);
            if page.changes.is_empty() {
                // Stop following someone who left the workspace.
                let member = lock(&f.relay.workspaces)
                    .require(&f.ws, &f.key, Role::Client)
                    .is_ok();
                if !member {
                    return None;
                }
                tokio::select! {
                    changed = f.ticks.changed() => if changed.is_err() { return None },
                    _ = f.shutdown.changed() => return None,
                }
            }
            f.queued.extend(page.changes);
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> ChangeHash {
        ChangeHash([n; 32])
    }

    #[test]
    fn a_write_of_two_authors_is_two_parts_each_bounded_by_its_own_changes() {
        // Author 1 wrote a <- b on x; author 2's c (queued, waiting for b)
        // landed in the same write.
        let (x, a, b, c) = (hash(1), hash(3), hash(4), hash(5));
        let (on_x, on_a, on_b) = ([x], [a], [b]);
        let parts = split_by_author(vec![
            (a, &on_x[..], 1),
            (b, &on_a[..], 1),
            (c, &on_b[..], 2),
        ]);
        assert_eq!(
            parts,
            vec![
                Write {
                    by: 1,
                    before: vec![x],
                    after: vec![b]
                },
                Write {
                    by: 2,
                    before: vec![b],
                    after: vec![c]
                },
            ]
        );
    }

    #[test]
    fn a_write_is_bounded_by_what_it_built_on_and_what_it_made() {
        // x and y were there before; the write is a <- b <- c on x, and d
        // on y beside them.
        let (x, y, a, b, c, d) = (hash(1), hash(2), hash(3), hash(4), hash(5), hash(6));
        let deps: [(ChangeHash, Vec<ChangeHash>); 4] =
            [(a, vec![x]), (b, vec![a]), (c, vec![b, x]), (d, vec![y])];
        let (before, after) = bounds(deps.iter().map(|(h, deps)| (*h, deps.as_slice())));
        assert_eq!(before, vec![x, y]);
        assert_eq!(after, vec![c, d]);
    }
}
