//! `delete` (customers, tasks, docs) and `customer erase`: what will go is
//! listed first and confirmed, then the relay removes it for good and this
//! replica drops its copies; other replicas drop theirs on their next sync.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, Result, bail};
use rapport_client::Repo;
use rapport_protocol::ids::DocumentId;
use serde_json::json;

use super::lookup;
use super::view::{Shown, short};
use crate::context::{Context, records_of_kind};

/// `delete ID`: the record `find` finds, with its comment threads.
pub(super) fn delete(
    ctx: &Context,
    find: fn(&Repo, &str) -> Result<DocumentId>,
    prefix: &str,
    yes: bool,
) -> Result<Shown> {
    let repo = ctx.repo()?;
    let record = find(&repo, prefix)?;
    let mut plan = vec![record];
    plan.extend(lookup::threads(&repo, record)?);
    remove(ctx, &repo, &plan, false, yes)
}

/// `customer erase ID`: the customer, the tasks and docs about it, and the
/// comment threads on any of them.
pub(super) fn erase(ctx: &Context, prefix: &str, yes: bool) -> Result<Shown> {
    let repo = ctx.repo()?;
    let customer = lookup::customer(&repo, prefix)?;
    let name = customer.to_string();
    let mut records = vec![customer];
    for kind in ["task", "requirements"] {
        records.extend(
            records_of_kind(&repo, kind)?
                .into_iter()
                .filter(|(_, entry)| entry.customer.as_deref() == Some(name.as_str()))
                .map(|(id, _)| id),
        );
    }
    let mut plan = records.clone();
    for record in records {
        plan.extend(lookup::threads(&repo, record)?);
    }
    remove(ctx, &repo, &plan, true, yes)
}

fn remove(
    ctx: &Context,
    repo: &Repo,
    plan: &[DocumentId],
    erase: bool,
    yes: bool,
) -> Result<Shown> {
    let verb = if erase { "erase" } else { "delete" };
    let listing = describe(repo, plan)?;
    if !yes {
        let ids: Vec<String> = plan.iter().map(|id| short(&id.to_string())).collect();
        confirm(
            &format!(
                "This will {verb} {} document(s) for good, on the relay and on every replica that syncs:\n{listing}",
                plan.len()
            ),
            &format!(
                "this would {verb} {} document(s) for good ({}); nothing was removed: confirm with --yes",
                plan.len(),
                ids.join(", ")
            ),
        )?;
    }
    // Documents made here and never synced are only here.
    let mut settings = ctx.settings()?;
    let current = settings.current.clone();
    let workspace = settings
        .workspaces
        .iter_mut()
        .find(|w| Some(&w.id) == current.as_ref())
        .context("no workspace yet: run `rapport workspace create NAME --relay URL` or `rapport join LINK`")?;
    let (local, listed): (Vec<DocumentId>, Vec<DocumentId>) = plan
        .iter()
        .partition(|id| workspace.pending.iter().any(|(p, _)| p == *id));
    workspace.pending.retain(|(id, _)| !local.contains(id));
    let mut removed = local.clone();
    if !listed.is_empty() {
        let entry = ctx.workspace()?;
        let api = entry.api(repo)?;
        removed.extend(
            api.remove_documents(&entry.id, &listed, erase)
                .with_context(|| format!("the relay did not {verb} them; nothing was removed"))?,
        );
    }
    ctx.save_settings(&settings)?;
    repo.forget(&removed)?;
    let human = if erase {
        format!(
            "{listing}erased {} document(s) from the relay and this replica; other replicas drop them on their next sync (a copy made outside rapport, or a browser that never syncs again, cannot be reached)",
            removed.len()
        )
    } else {
        format!(
            "{listing}deleted {} document(s); other replicas drop them on their next sync",
            removed.len()
        )
    };
    let ids: Vec<String> = removed.iter().map(ToString::to_string).collect();
    Ok(Shown::new(
        human,
        json!({ "removed": ids, "erased": erase }),
    ))
}

/// One line per document: its kind, short id and title.
fn describe(repo: &Repo, plan: &[DocumentId]) -> Result<String> {
    let entries: std::collections::HashMap<_, _> = repo.index()?.into_iter().collect();
    let mut out = String::new();
    for id in plan {
        let id_text = short(&id.to_string());
        let line = match entries.get(id) {
            Some(entry) => format!("  {:<12} {id_text}  {}", entry.kind.as_str(), entry.title),
            None => format!("  {:<12} {id_text}", "document"),
        };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// Asks `question` on the terminal; without one, refuses with `refusal`.
fn confirm(question: &str, refusal: &str) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{refusal}");
    }
    eprint!("{question}Type yes to go on: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("nothing was removed");
    }
    Ok(())
}
