//! The comment thread an automation's `comment` action starts on a record,
//! written with plain automerge in the layout of the client's `Thread`:
//! `kind` = `"thread"`, `schema` = 1, `record`, and `comments`, a list of
//! maps `{id, author, at, body, mentions: [], reply_to: null}`.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ROOT, ScalarValue};

/// Writes a new thread on `record` holding one comment.
pub(crate) fn write(
    tx: &mut impl Transactable,
    record: &str,
    id: &str,
    author: &str,
    at: i64,
    body: &str,
) -> Result<(), AutomergeError> {
    tx.put(ROOT, "record", record)?;
    let comments = tx.put_object(ROOT, "comments", ObjType::List)?;
    let comment = tx.insert_object(&comments, 0, ObjType::Map)?;
    tx.put(&comment, "id", id)?;
    tx.put(&comment, "author", author)?;
    tx.put(&comment, "at", at)?;
    tx.put(&comment, "body", body)?;
    tx.put_object(&comment, "mentions", ObjType::List)?;
    tx.put(&comment, "reply_to", ScalarValue::Null)?;
    tx.put(ROOT, "kind", "thread")?;
    tx.put(ROOT, "schema", 1_u64)?;
    Ok(())
}
