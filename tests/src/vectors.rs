//! The captured automerge-repo sessions in `tests/vectors/`, parsed into
//! frames: the payload bytes, what the JS decoder made of them, and for
//! sync messages the summary automerge printed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One captured WebSocket frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Where it is in the transcript, for messages.
    pub label: String,
    /// The payload.
    pub bytes: Vec<u8>,
    /// What cbor-x decoded, in the canonical JSON form of [`crate::js`]:
    /// byte strings as `{"$bytes": hex}`, `undefined` as `{"$undefined": true}`.
    pub js: Value,
    /// For `sync` and `request`: automerge's summary of the sync message.
    pub sync_summary: Option<SyncSummary>,
}

/// What the transcript says about the automerge sync message in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    /// The heads, in full hex.
    pub heads: Vec<String>,
    /// How many change chunks the message carries.
    pub changes: usize,
}

/// The folder holding the transcripts.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Both transcripts' names.
pub const TRANSCRIPTS: [&str; 2] = [
    "automerge-repo-2.5.6-session.txt",
    "automerge-repo-sync-server-0.2.8-session.txt",
];

/// Every binary frame of one transcript, in order.
pub fn load(name: &str) -> Result<Vec<Frame>> {
    let path = vectors_dir().join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse(text: &str) -> Result<Vec<Frame>> {
    let full = text
        .split_once("Full transcript")
        .map(|(_, rest)| rest)
        .context("no `Full transcript` section")?;
    let mut frames = Vec::new();
    let mut lines = full.lines().peekable();
    let mut label = String::new();
    while let Some(line) = lines.next() {
        if line.starts_with('[') {
            label = line.trim().to_owned();
            continue;
        }
        let Some(rest) = line.trim().strip_prefix("hex (") else {
            continue;
        };
        let expected_len: usize = rest.trim_end_matches("B):").parse()?;
        let mut hex_text = String::new();
        while let Some(next) = lines.peek() {
            if next.trim().starts_with("cbor diag:") {
                break;
            }
            hex_text.push_str(&next.replace(' ', ""));
            lines.next();
        }
        let bytes = hex::decode(hex_text.trim())?;
        if bytes.len() != expected_len {
            bail!("{label}: {} bytes, header says {expected_len}", bytes.len());
        }
        let diag = lines.next().context("no cbor diag line")?;
        let js_line = lines.next().context("no cbor-x decode line")?;
        let js_text = js_line
            .trim()
            .strip_prefix("cbor-x decode:")
            .context("expected a `cbor-x decode:` line")?;
        let data_hex = diag.split("h'").nth(1).and_then(|s| s.split('\'').next());
        let js = canonical(serde_json::from_str(js_text.trim())?, data_hex)?;
        let sync_summary = match lines.peek() {
            Some(next) if next.trim().starts_with("automerge sync msg:") => {
                Some(parse_summary(lines.next().unwrap_or_default())?)
            }
            _ => None,
        };
        frames.push(Frame {
            label: label.clone(),
            bytes,
            js,
            sync_summary,
        });
    }
    Ok(frames)
}

/// Rewrites the transcript's placeholders into the canonical JSON form.
fn canonical(value: Value, data_hex: Option<&str>) -> Result<Value> {
    Ok(match value {
        Value::String(s) if s == "<undefined>" => serde_json::json!({ "$undefined": true }),
        Value::String(s) if s.starts_with("<Buffer ") => {
            let hex = data_hex.context("a Buffer without an h'..' in the diag line")?;
            serde_json::json!({ "$bytes": hex })
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, canonical(v, data_hex)?)))
                .collect::<Result<_>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| canonical(v, data_hex))
                .collect::<Result<_>>()?,
        ),
        other => other,
    })
}

/// `automerge sync msg: heads=["08d7...", ...] need=[] have=[...] changes=1 (bytes 296)`
fn parse_summary(line: &str) -> Result<SyncSummary> {
    let heads_text = line
        .split("heads=[")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .context("no heads=")?;
    let heads = heads_text
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    let changes = line
        .split("changes=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .context("no changes=")?
        .parse()?;
    Ok(SyncSummary { heads, changes })
}
