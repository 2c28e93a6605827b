//! `rapport watch`: the workspace's change feed, one line per write, as it
//! reaches the relay (a long poll of `GET /api/workspaces/{ws}/changes`).

use std::io::Write;

use anyhow::Result;
use rapport_model::api::ChangeEntry;

use crate::context::Context;

/// Entries asked for at a time.
const PAGE: usize = 200;
/// How long one request waits for something new.
const WAIT_SECS: u64 = 20;

pub(crate) fn run(ctx: &Context, since: &str, once: bool) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    let mut since = since.to_owned();
    let mut out = std::io::stdout().lock();
    loop {
        let wait = if once { 0 } else { WAIT_SECS };
        let page = api.changes(&workspace.id, &since, PAGE, wait)?;
        for entry in &page.changes {
            if ctx.json {
                writeln!(out, "{}", serde_json::to_string(entry)?)?;
            } else {
                writeln!(out, "{}", line(entry))?;
            }
        }
        out.flush()?;
        since = page.next;
        if once && page.changes.len() < PAGE {
            if !ctx.json {
                eprintln!("resume with: rapport watch --since {since}");
            }
            return Ok(());
        }
    }
}

/// `2026-12-05T19:01:02Z  customer  7Xk2aB9q  Acme Ltd  stage, score  by Sam Staff  #1234`
fn line(entry: &ChangeEntry) -> String {
    let at = rapport_model::date::utc_timestamp(rapport_protocol::ids::UnixMillis(entry.at));
    let id: String = entry.document.to_string().chars().take(8).collect();
    let by = match (&entry.by_name, &entry.by) {
        (Some(name), _) => name.clone(),
        (None, Some(key)) => key.to_string().chars().take(10).collect(),
        (None, None) => "-".to_owned(),
    };
    let kind = if entry.kind.is_empty() {
        "document"
    } else {
        &entry.kind
    };
    let title = if entry.title.is_empty() {
        String::new()
    } else {
        format!("  {}", entry.title)
    };
    format!(
        "{at}  {kind:<12} {id}{title}  {}  by {by}  #{}",
        entry.fields.join(", "),
        entry.cursor
    )
}
