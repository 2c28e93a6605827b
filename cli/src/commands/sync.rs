//! `rapport sync [--watch]`: put new documents in the workspace, then sync
//! every document with the relay, with a progress display. A relay at
//! several addresses (a cluster) is tried at each in turn, from the one that
//! last worked.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use rapport_client::Progress;
use serde_json::json;

use crate::context::Context;

pub(crate) fn run(ctx: &Context, watch: bool) -> Result<()> {
    let workspace = ctx.workspace()?;
    let repo = ctx.repo()?;
    let relays = workspace.relays();
    let several = relays.urls.len() > 1;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    register_pending(ctx, &repo)?;
    let started = rapport_client::now().0;
    let terminal = std::io::stderr().is_terminal() && !ctx.json;
    let mut last_line = String::new();
    let report = |p: &Progress| {
        let bar = if terminal {
            format!("{} ", bar(p.documents_synced, p.documents_total))
        } else {
            String::new()
        };
        // Which address, when there is a choice.
        let through = match &p.relay {
            Some(relay) if several => format!("{}: ", shown(relay)),
            _ => String::new(),
        };
        let line = format!(
            "{bar}{through}{}/{} documents in sync, {} sent, {} received",
            p.documents_synced,
            p.documents_total,
            bytes(p.bytes_sent),
            bytes(p.bytes_received)
        );
        if line != last_line {
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else if !ctx.json {
                eprintln!("{line}");
            }
            last_line = line;
        }
    };
    let synced = runtime
        .block_on(repo.sync_once_through(&relays, Duration::from_secs(600), report))
        .map_err(|e| anyhow!("{e}\nyour edits are safe in {}; run `rapport sync` again when the relay is reachable", ctx.home.display()))?;
    let progress = &synced.progress;
    if terminal {
        eprintln!();
    }
    remember_names(ctx, &repo);
    let refused = repo.refused_changes()?;
    // What the relay refused this time, in its words; older notices are
    // in `--json`.
    let mut now_refused: Vec<String> = refused
        .iter()
        .filter(|n| n.at >= started)
        .map(|n| {
            format!(
                "\nthe relay refused {} change(s) to {}: {}",
                n.changes.len(),
                n.document,
                n.message
            )
        })
        .collect();
    now_refused.dedup();
    ctx.print(
        format!(
            "in sync with {}: {} documents{}",
            synced.relay,
            progress.documents_total,
            if now_refused.is_empty() {
                String::new()
            } else {
                now_refused.concat()
            }
        ),
        json!({
            "relay": synced.relay.to_string(),
            "relays": workspace.relays,
            "documents": progress.documents_total,
            "bytes_sent": progress.bytes_sent,
            "bytes_received": progress.bytes_received,
            "refused": refused,
        }),
    );
    if watch {
        eprintln!("watching for changes; Ctrl-C stops");
        runtime.block_on(async {
            let live = repo.sync_live_through(&relays)?;
            let mut progress = live.progress();
            let mut through = Some(synced.relay.sync_url());
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    changed = progress.changed() => {
                        if changed.is_err() { break; }
                        let p = progress.borrow().clone();
                        if let Some(error) = &p.last_error && !p.connected {
                            eprintln!("disconnected ({error}); reconnecting");
                        }
                        if p.connected && p.relay != through {
                            eprintln!("syncing through {}", shown(p.relay.as_deref().unwrap_or_default()));
                            through = p.relay;
                        }
                    }
                }
            }
            live.stop().await;
            Ok::<_, anyhow::Error>(())
        })?;
    }
    Ok(())
}

/// Keeps the members' names (as they gave them to the relay) for `history`,
/// comments and `dashboard` to show offline. Best effort: an unreachable
/// relay leaves the names known before.
fn remember_names(ctx: &Context, repo: &rapport_client::Repo) {
    let fetched = (|| -> Result<std::collections::BTreeMap<String, String>> {
        let workspace = ctx.workspace()?;
        let api = workspace.api(repo)?;
        Ok(api
            .people(&workspace.id)?
            .into_iter()
            .filter_map(|person| Some((person.key.to_string(), person.name?)))
            .collect())
    })();
    let Ok(names) = fetched else {
        return;
    };
    if let Ok(mut settings) = ctx.settings()
        && let Some(current) = settings.current.clone()
        && let Some(entry) = settings.workspaces.iter_mut().find(|w| w.id == current)
        && entry.names != names
    {
        entry.names = names;
        let _ = ctx.save_settings(&settings);
    }
}

/// Puts documents made here into the workspace on the relay.
fn register_pending(ctx: &Context, repo: &rapport_client::Repo) -> Result<()> {
    let mut settings = ctx.settings()?;
    let Some(current) = settings.current.clone() else {
        return Ok(());
    };
    let Some(workspace) = settings.workspaces.iter_mut().find(|w| w.id == current) else {
        return Ok(());
    };
    // A client may add only comment threads; its other documents stay on
    // its own device.
    let client = workspace.role == rapport_client::api::Role::Client;
    let (now, later): (Vec<_>, Vec<_>) = workspace
        .pending
        .iter()
        .copied()
        .partition(|(_, thread_of)| !client || thread_of.is_some());
    if now.is_empty() {
        return Ok(());
    }
    let api = workspace.api(repo)?;
    api.add_documents(&workspace.id, &now)
        .with_context(|| format!("putting {} new document(s) in the workspace", now.len()))?;
    workspace.pending = later;
    ctx.save_settings(&settings)
}

/// A relay's address as `workspace list` shows it (`http://…`, not the
/// `ws://…/sync` connected to).
fn shown(url: &str) -> String {
    url.parse::<rapport_client::relay_url::RelayUrl>()
        .map_or_else(|_| url.to_owned(), |url| url.to_string())
}

/// `[########------------]`: the share of documents in sync.
fn bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH)
        .checked_div(total)
        .map_or(WIDTH, |f| f.min(WIDTH));
    format!("[{}{}]", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_documents_in_sync() {
        assert_eq!(bar(0, 10), format!("[{}]", "-".repeat(20)));
        assert_eq!(
            bar(5, 10),
            format!("[{}{}]", "#".repeat(10), "-".repeat(10))
        );
        assert_eq!(bar(10, 10), format!("[{}]", "#".repeat(20)));
        assert_eq!(bar(0, 0), format!("[{}]", "#".repeat(20)));
        assert_eq!(bytes(2048), "2.0 KiB");
    }
}
