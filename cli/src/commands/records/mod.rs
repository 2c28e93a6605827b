//! Record commands: customers, tasks, requirement docs and comments.
//!
//! Each group lives in its own file (`customer`, `task`, `doc`, `comment`)
//! and calls the typed model of `rapport_model`; the files beside
//! them hold what the groups share:
//!
//! - `input`: reading what people type (`KEY=VALUE`, keys or `me`, dates,
//!   stage/status/priority names) into values, with one-line errors that say
//!   how to fix the input;
//! - `edits`: the `KEY=VALUE` changes of `customer set` and `task set`;
//! - `lookup`: turning an id prefix into a document id through the index;
//! - `view`: tables and `key: value` blocks for people, JSON objects with
//!   the documents' own field names for `--json`;
//! - `diff` and `editor`: the text difference `doc edit` applies as
//!   splices, and the round trip through `$EDITOR`.
//!
//! Every command checks all of its input before it writes anything, so a bad
//! id, date, field or value leaves the replica as it was. Lists filter on the
//! replica's index, then read each listed record so that `--json` lists carry
//! the same objects as `show`.

mod comment;
mod csv;
mod customer;
mod diff;
mod doc;
mod editor;
mod edits;
mod input;
mod lookup;
mod removal;
mod task;
#[cfg(test)]
mod testing;
mod view;

pub(crate) use comment::{CommentCommand, run as run_comment};
pub(crate) use customer::{CustomerCommand, run as run_customer};
pub(crate) use doc::{DocCommand, run as run_doc};
pub(crate) use task::{TaskCommand, run as run_task};

/// `archive` and `unarchive`: the record `find` finds by `prefix`.
fn archive(
    ctx: &crate::context::Context,
    find: fn(&rapport_client::Repo, &str) -> anyhow::Result<rapport_protocol::ids::DocumentId>,
    prefix: &str,
    archived: bool,
) -> anyhow::Result<view::Shown> {
    let repo = ctx.repo()?;
    let id = find(&repo, prefix)?;
    repo.change(id, |tx| rapport_model::set_archived(tx, archived))?;
    Ok(view::Shown::new(
        if archived {
            format!("archived {id}; `list --archived` shows it, `unarchive` brings it back")
        } else {
            format!("{id} is back")
        },
        serde_json::json!({ "id": id.to_string(), "archived": archived }),
    ))
}
