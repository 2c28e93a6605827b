//! `rapport comment`: comments on customers, tasks and docs.
//!
//! A record's comments live in its own thread document (kind `thread`, with
//! `record` naming the record), found through the index and made on the
//! first comment. Two replicas that each start a thread on the same record
//! while apart end up with two threads: lists merge them, new comments go
//! to the one with the smallest id, so every replica picks the same one.

use std::collections::HashSet;

use anyhow::{Result, bail};
use clap::Subcommand;
use rapport_client::Repo;
use rapport_model::api::Person;
use rapport_model::{Comment, Thread};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde_json::{Value, json};

use super::view::{self, Shown};
use super::{input, lookup};
use crate::context::Context;

const ADD_EXAMPLES: &str = "Examples:
  rapport comment add 4fRt \"Is the budget final?\"
  rapport comment add 4fRt \"Yes, signed off.\" --reply-to c0ffee12
  rapport comment add 7Xk2 \"@Sam can you call them?\"   # @Name or @KEYPREFIX mentions a member

ID is any customer, task or doc (an id or unique prefix).";

const GROUP_EXAMPLES: &str = "Examples:
  rapport comment add 4fRt \"Is the budget final?\"
  rapport comment list 4fRt
  rapport comment resolve 4fRt c0ffee12

IDs accept any unique prefix; `rapport comment COMMAND --help` says more.";

/// Comments on customers, tasks and docs.
#[derive(Debug, Subcommand)]
#[command(after_help = GROUP_EXAMPLES)]
pub(crate) enum CommentCommand {
    /// Comment on a record (or answer a comment) and print the comment's id.
    #[command(after_help = ADD_EXAMPLES)]
    Add {
        /// The customer, task or doc: an id or unique prefix.
        id: String,
        /// The comment.
        text: String,
        /// The comment this answers: its id or a unique prefix.
        #[arg(long, value_name = "CID")]
        reply_to: Option<String>,
    },
    /// List the comments on a record, answers under what they answer.
    #[command(
        after_help = "Examples:\n  rapport comment list 4fRt\n  rapport --json comment list 4fRt"
    )]
    List {
        /// The customer, task or doc: an id or unique prefix.
        id: String,
    },
    /// Mark a comment resolved (or open again with --reopen).
    #[command(
        after_help = "Examples:\n  rapport comment resolve 4fRt c0ffee12\n  rapport comment resolve 4fRt c0ff --reopen"
    )]
    Resolve {
        /// The customer, task or doc: an id or unique prefix.
        id: String,
        /// The comment: its id or a unique prefix.
        cid: String,
        /// Mark it open again.
        #[arg(long)]
        reopen: bool,
    },
}

pub(crate) fn run(ctx: &Context, command: CommentCommand) -> Result<()> {
    let shown = match command {
        CommentCommand::Add { id, text, reply_to } => add(ctx, &id, &text, reply_to.as_deref())?,
        CommentCommand::List { id } => list(ctx, &id)?,
        CommentCommand::Resolve { id, cid, reopen } => resolve(ctx, &id, &cid, !reopen)?,
    };
    ctx.print(shown.human, shown.json);
    Ok(())
}

/// The comments of `threads`, oldest first, each with its thread.
fn comments_of(repo: &Repo, threads: &[DocumentId]) -> Result<Vec<(DocumentId, Comment)>> {
    let mut all = Vec::new();
    for &thread in threads {
        let comments = lookup::read_thread(repo, thread)?.comments;
        all.extend(comments.into_iter().map(|comment| (thread, comment)));
    }
    all.sort_by(|(_, a), (_, b)| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(all)
}

/// The one comment whose id starts with `prefix`.
fn find<'a>(
    comments: &'a [(DocumentId, Comment)],
    prefix: &str,
) -> Result<&'a (DocumentId, Comment)> {
    let matches: Vec<&(DocumentId, Comment)> = comments
        .iter()
        .filter(|(_, comment)| comment.id.starts_with(prefix) && !prefix.is_empty())
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no comment with an id starting `{prefix}` on this record; `rapport comment list ID` shows them"
        ),
        many => bail!(
            "`{prefix}` matches {} comments; type more of the comment id",
            many.len()
        ),
    }
}

fn add(ctx: &Context, prefix: &str, text: &str, reply_to: Option<&str>) -> Result<Shown> {
    if text.trim().is_empty() {
        bail!(
            "the comment is empty: give its text, e.g. rapport comment add ID \"Is the budget final?\""
        );
    }
    // `@Name` and `@KEYPREFIX` need the members' names, from the relay;
    // offline, only whole keys are recognised.
    let people = if text.contains('@') {
        ctx.api()
            .ok()
            .and_then(|(api, ws)| api.people(&ws.id).ok())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mentioned = mentions(text, &people)?;
    let (record, thread, comment, new_thread) = {
        let repo = ctx.repo()?;
        let record = lookup::record(&repo, prefix)?;
        let threads = lookup::threads(&repo, record)?;
        let existing = comments_of(&repo, &threads)?;
        let reply_to = reply_to
            .map(|cid| find(&existing, cid))
            .transpose()?
            .map(|(_, c)| c.id.clone());
        let comment = compose(&repo.public_key(), text, &mentioned, reply_to, &existing);
        let written = comment.clone();
        let (thread, new_thread) = match threads.first() {
            Some(&thread) => (
                repo.change(thread, |tx| Thread::update(tx, |t| t.add(written)))
                    .map(|()| thread)?,
                false,
            ),
            None => (
                repo.create(|tx| {
                    Thread {
                        record: record.to_string(),
                        comments: vec![written],
                    }
                    .write(tx)
                })?
                .0,
                true,
            ),
        };
        (record, thread, comment, new_thread)
    };
    if new_thread {
        ctx.created(thread, Some(record))?;
    }
    let human = format!(
        "added comment {} on {}",
        comment.id,
        view::short(&record.to_string())
    );
    let json =
        json!({ "id": comment.id, "thread": thread.to_string(), "record": record.to_string() });
    Ok(Shown::new(human, json))
}

/// A new comment by `me` mentioning `people`, with an id no comment in
/// `existing` has.
fn compose(
    me: &PublicKey,
    text: &str,
    people: &[PublicKey],
    reply_to: Option<String>,
    existing: &[(DocumentId, Comment)],
) -> Comment {
    let taken: HashSet<&str> = existing.iter().map(|(_, c)| c.id.as_str()).collect();
    let id = std::iter::repeat_with(|| format!("{:08x}", rand::random::<u32>()))
        .find(|id| !taken.contains(id.as_str()))
        .unwrap_or_default(); // an endless iterator: `find` returns only with an id
    let mut comment =
        Comment::new(id, me, crate::context::now_millis(), text.trim()).mentioning(people);
    comment.reply_to = reply_to;
    comment
}

/// The people a text mentions: `@KEY`, or among `people` (the members)
/// `@Name` (a whole name without spaces, or a first name, in any case) or
/// `@KEYPREFIX` (4 characters or more). An `@word` that names nobody is
/// only text; one that names several members is refused.
fn mentions(text: &str, people: &[Person]) -> Result<Vec<PublicKey>> {
    let mut found: Vec<PublicKey> = Vec::new();
    for word in text.split_whitespace().filter_map(|w| w.strip_prefix('@')) {
        let word = word.trim_end_matches(|c: char| !c.is_alphanumeric());
        if word.is_empty() {
            continue;
        }
        if let Ok(key) = word.parse::<PublicKey>() {
            found.push(key);
            continue;
        }
        let lower = word.to_lowercase();
        let named = |p: &&Person| {
            p.name.as_deref().is_some_and(|name| {
                let name = name.to_lowercase();
                name.replace(' ', "") == lower || name.split_whitespace().next() == Some(&lower)
            })
        };
        let mut matching: Vec<&Person> = people.iter().filter(named).collect();
        if matching.is_empty() && word.len() >= 4 {
            matching = people
                .iter()
                .filter(|p| p.key.to_string().starts_with(word))
                .collect();
        }
        match matching.as_slice() {
            [] => {}
            [one] => found.push(one.key),
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|p| {
                        let key: String = p.key.to_string().chars().take(6).collect();
                        format!("{} (@{key})", p.name.as_deref().unwrap_or("no name"))
                    })
                    .collect();
                bail!(
                    "@{word} names {} members: {}; mention by key prefix instead",
                    many.len(),
                    names.join(", ")
                );
            }
        }
    }
    found.sort_by_key(ToString::to_string);
    found.dedup();
    Ok(found)
}

fn list(ctx: &Context, prefix: &str) -> Result<Shown> {
    let repo = ctx.repo()?;
    let record = lookup::record(&repo, prefix)?;
    let comments = comments_of(&repo, &lookup::threads(&repo, record)?)?;
    let me = repo.public_key().to_string();
    let rows: Vec<Vec<String>> = threaded(&comments)
        .into_iter()
        .map(|(depth, comment)| {
            let author = if comment.author == me {
                "me".to_owned()
            } else {
                view::short(&comment.author)
            };
            let state = if comment.resolved { "resolved" } else { "open" };
            let arrow = if depth > 0 { "↳ " } else { "" };
            let text = format!(
                "{}{arrow}{}",
                "  ".repeat(depth.saturating_sub(1)),
                comment.body
            );
            vec![
                comment.id.clone(),
                input::timestamp(comment.at),
                author,
                state.to_owned(),
                text,
            ]
        })
        .collect();
    let human = if rows.is_empty() {
        format!(
            "no comments on {} yet; add one with `rapport comment add ID TEXT`",
            view::short(&record.to_string())
        )
    } else {
        view::table(&["ID", "WHEN (UTC)", "AUTHOR", "STATE", "COMMENT"], &rows)
    };
    let json: Vec<Value> = comments
        .iter()
        .map(|(thread, comment)| view::comment_json(*thread, comment))
        .collect();
    Ok(Shown::new(human, Value::Array(json)))
}

/// The comments in reading order with their depth: each answer right under
/// what it answers. Comments answering something unknown count as new.
fn threaded(comments: &[(DocumentId, Comment)]) -> Vec<(usize, &Comment)> {
    let known: HashSet<&str> = comments.iter().map(|(_, c)| c.id.as_str()).collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let roots = comments
        .iter()
        .map(|(_, c)| c)
        .filter(|c| c.reply_to.as_deref().is_none_or(|to| !known.contains(to)));
    for root in roots {
        visit(root, 0, comments, &mut seen, &mut out);
    }
    // Answers in a loop (only a hand-made document can have one) still show.
    for (_, comment) in comments {
        if seen.insert(comment.id.as_str()) {
            out.push((0, comment));
        }
    }
    out
}

fn visit<'a>(
    comment: &'a Comment,
    depth: usize,
    all: &'a [(DocumentId, Comment)],
    seen: &mut HashSet<&'a str>,
    out: &mut Vec<(usize, &'a Comment)>,
) {
    if !seen.insert(comment.id.as_str()) {
        return;
    }
    out.push((depth, comment));
    for (_, answer) in all
        .iter()
        .filter(|(_, c)| c.reply_to.as_deref() == Some(comment.id.as_str()))
    {
        visit(answer, depth + 1, all, seen, out);
    }
}

fn resolve(ctx: &Context, prefix: &str, cid: &str, resolved: bool) -> Result<Shown> {
    let repo = ctx.repo()?;
    let record = lookup::record(&repo, prefix)?;
    let comments = comments_of(&repo, &lookup::threads(&repo, record)?)?;
    let (thread, comment) = find(&comments, cid)?;
    let id = comment.id.clone();
    // The relay refuses a client's change to another person's comment;
    // say so before writing one.
    let me = repo.identity().public_key().to_string();
    if comment.author != me
        && let Ok(workspace) = ctx.workspace()
        && !workspace.role.is_staff()
    {
        bail!(
            "comment {id} is {}'s: a client may resolve or reopen only their own comments (staff may resolve any)",
            comment.author
        );
    }
    repo.change(*thread, |tx| {
        Thread::update(tx, |t| t.set_resolved(&id, resolved))
    })?;
    let updated = Comment {
        resolved,
        ..comment.clone()
    };
    let human = format!(
        "{} comment {id}",
        if resolved { "resolved" } else { "reopened" }
    );
    Ok(Shown::new(human, view::comment_json(*thread, &updated)))
}

#[cfg(test)]
#[path = "comment_tests.rs"]
mod tests;
