//! The automations document of a workspace: its rules, and what became of
//! each when the relay ran it.
//!
//! ```text
//! { kind: "automations", schema: 1, workspace: "<id>",
//!   "rule/<id>":   { text, by: <base58 key>, at: <unix ms> },
//!   "status/<id>": { runs, failures, last_error, last_at } }
//! ```
//!
//! Each rule is its own key at the root, so rules added on two replicas at
//! once both survive the merge (one shared `rules` map made on both would
//! conflict, and one side's rules would vanish). People write the rules
//! (from the CLI); the relay writes the status. The
//! document's id is derived from the workspace's ([`document_id`]), so every
//! replica that adds the first rule makes the same document and automerge
//! merges them.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use sha2::{Digest, Sha256};

use rapport_protocol::ids::DocumentId;

/// The kind written at the document's root.
pub const KIND: &str = "automations";

/// The id of a workspace's automations document: the first 16 bytes of
/// SHA-256 over a fixed tag and the workspace id.
pub fn document_id(workspace: &str) -> DocumentId {
    let digest = Sha256::new()
        .chain_update(b"rapport/automations\0")
        .chain_update(workspace.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    DocumentId::from_bytes(bytes)
}

/// One rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    pub id: String,
    pub text: String,
    /// Who added it: a base58 public key.
    pub by: String,
    /// When, in unix milliseconds.
    pub at: i64,
    pub status: RuleStatus,
}

/// What the relay reports about a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleStatus {
    pub runs: u64,
    pub failures: u64,
    /// The last failure's message, cleared by the next success.
    pub last_error: Option<String>,
    /// When it last ran, in unix milliseconds.
    pub last_at: Option<i64>,
}

/// The rules of an automations document, oldest first.
pub fn rules(doc: &impl ReadDoc) -> Vec<StoredRule> {
    let mut out: Vec<StoredRule> = doc
        .keys(ROOT)
        .filter_map(|key| {
            let id = key.strip_prefix(RULE)?.to_owned();
            let rule = map(doc, &ROOT, &key)?;
            let status = map(doc, &ROOT, &format!("{STATUS}{id}"))
                .map(|s| RuleStatus {
                    runs: int(doc, &s, "runs").unwrap_or(0).max(0) as u64,
                    failures: int(doc, &s, "failures").unwrap_or(0).max(0) as u64,
                    last_error: text(doc, &s, "last_error").filter(|e| !e.is_empty()),
                    last_at: int(doc, &s, "last_at"),
                })
                .unwrap_or_default();
            Some(StoredRule {
                text: text(doc, &rule, "text")?,
                by: text(doc, &rule, "by").unwrap_or_default(),
                at: int(doc, &rule, "at").unwrap_or(0),
                status,
                id,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    out
}

const RULE: &str = "rule/";
const STATUS: &str = "status/";

/// Writes the document's header (`kind`, `schema`, `workspace`) if it has
/// none: what the relay writes when it makes a workspace's document.
pub fn write_header(tx: &mut impl Transactable, workspace: &str) -> Result<(), AutomergeError> {
    if tx.get(ROOT, "kind")?.is_none() {
        tx.put(ROOT, "kind", KIND)?;
        tx.put(ROOT, "schema", 1_u64)?;
        tx.put(ROOT, "workspace", workspace)?;
    }
    Ok(())
}

/// Adds a rule under `id` (the header too, if the document is new).
pub fn add_rule(
    tx: &mut impl Transactable,
    workspace: &str,
    id: &str,
    text: &str,
    by: &str,
    at: i64,
) -> Result<(), AutomergeError> {
    write_header(tx, workspace)?;
    let rule = tx.put_object(ROOT, format!("{RULE}{id}"), ObjType::Map)?;
    tx.put(&rule, "text", text)?;
    tx.put(&rule, "by", by)?;
    tx.put(&rule, "at", at)?;
    Ok(())
}

/// Removes a rule; `false` if there was none with this id.
pub fn remove_rule(tx: &mut impl Transactable, id: &str) -> Result<bool, AutomergeError> {
    let key = format!("{RULE}{id}");
    if tx.get(ROOT, &key)?.is_none() {
        return Ok(false);
    }
    tx.delete(ROOT, key)?;
    Ok(true)
}

/// Records one run of a rule: a success clears the last error.
pub fn record_run(
    tx: &mut impl Transactable,
    id: &str,
    error: Option<&str>,
    at: i64,
) -> Result<(), AutomergeError> {
    let rule = ensure_map(tx, &ROOT, &format!("{STATUS}{id}"))?;
    let runs = int(tx, &rule, "runs").unwrap_or(0);
    tx.put(&rule, "runs", runs + 1)?;
    if let Some(error) = error {
        let failures = int(tx, &rule, "failures").unwrap_or(0);
        tx.put(&rule, "failures", failures + 1)?;
        tx.put(&rule, "last_error", error)?;
    } else {
        tx.put(&rule, "last_error", "")?;
    }
    tx.put(&rule, "last_at", at)?;
    Ok(())
}

fn ensure_map(
    tx: &mut impl Transactable,
    parent: &ObjId,
    key: &str,
) -> Result<ObjId, AutomergeError> {
    match map(tx, parent, key) {
        Some(id) => Ok(id),
        None => tx.put_object(parent, key, ObjType::Map),
    }
}

fn map(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

fn text(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<String> {
    match doc.get(parent, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
}

fn int(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<i64> {
    match doc.get(parent, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(n) => Some(*n),
            ScalarValue::Uint(n) => i64::try_from(*n).ok(),
            ScalarValue::F64(n) => Some(*n as i64),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::Automerge;

    #[test]
    fn the_id_is_the_same_everywhere_and_differs_per_workspace() {
        assert_eq!(document_id("ws-1"), document_id("ws-1"));
        assert_ne!(document_id("ws-1"), document_id("ws-2"));
        assert_ne!(document_id(""), document_id("\0"));
    }

    #[test]
    fn rules_are_added_listed_with_status_and_removed() {
        let mut doc = Automerge::new();
        doc.transact::<_, _, AutomergeError>(|tx| {
            add_rule(
                tx,
                "ws",
                "r2",
                "when document shared then comment hi",
                "KEY",
                20,
            )?;
            add_rule(
                tx,
                "ws",
                "r1",
                "when form submitted then comment hi",
                "KEY",
                10,
            )
        })
        .unwrap();
        doc.transact::<_, _, AutomergeError>(|tx| {
            record_run(tx, "r2", Some("webhook down"), 30)?;
            record_run(tx, "r2", Some("webhook down again"), 40)?;
            record_run(tx, "r1", None, 50)
        })
        .unwrap();
        let listed = rules(&doc);
        assert_eq!(
            listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["r1", "r2"]
        );
        assert_eq!(listed[0].status.runs, 1);
        assert_eq!(listed[0].status.last_error, None);
        assert_eq!(
            listed[1].status,
            RuleStatus {
                runs: 2,
                failures: 2,
                last_error: Some("webhook down again".into()),
                last_at: Some(40)
            }
        );
        doc.transact::<_, _, AutomergeError>(|tx| {
            record_run(tx, "r2", None, 60)?;
            assert!(remove_rule(tx, "r1")?);
            assert!(!remove_rule(tx, "nope")?);
            Ok(())
        })
        .unwrap();
        let listed = rules(&doc);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status.failures, 2, "failures are counted");
        assert_eq!(listed[0].status.last_error, None, "a success clears it");
    }

    #[test]
    fn two_replicas_adding_rules_merge_into_one_document() {
        let mut a = Automerge::new();
        let mut b = Automerge::new();
        a.transact::<_, _, AutomergeError>(|tx| add_rule(tx, "ws", "ra", "A", "KA", 1))
            .unwrap();
        b.transact::<_, _, AutomergeError>(|tx| add_rule(tx, "ws", "rb", "B", "KB", 2))
            .unwrap();
        a.merge(&mut b).unwrap();
        let texts: Vec<String> = rules(&a).into_iter().map(|r| r.text).collect();
        assert_eq!(texts, ["A", "B"], "both survive");
    }
}
