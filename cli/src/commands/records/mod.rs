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
mod task;
#[cfg(test)]
mod testing;
mod view;

pub(crate) use comment::{CommentCommand, run as run_comment};
pub(crate) use customer::{CustomerCommand, run as run_customer};
pub(crate) use doc::{DocCommand, run as run_doc};
pub(crate) use task::{TaskCommand, run as run_task};
