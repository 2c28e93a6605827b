//! `rapport history` and `rapport restore`: who changed what and when in a
//! document, and putting a field's earlier value back.
//!
//! People are named by key: a change names the key its automerge actor
//! starts with (see `rapport_client::history`). The relay keeps members'
//! keys and roles, not names, so the one name a replica knows is its own
//! person's (`rapport init --name`); everyone else shows as their key.

use anyhow::{Result, bail};
use clap::Args;
use rapport_client::Repo;
use rapport_client::history::{self, ChangeInfo, FieldChange};
use rapport_protocol::ids::{DocumentId, PublicKey, UnixMillis};
use serde_json::{Value, json};

use crate::context::{Context, resolve};

/// How many hex digits of a change hash lists show (any unique prefix
/// works in `restore --to`).
const SHORT_HASH: usize = 12;
/// How many characters of a key or id lists show.
const SHORT_ID: usize = 8;

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// The record's id, or any unique prefix of it.
    id: String,
    /// Only changes to this field, with its value after each.
    #[arg(long, value_name = "FIELD")]
    field: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The record's id, or any unique prefix of it.
    id: String,
    /// The field to put back (as `history` names it: stage, due, tags, …).
    #[arg(long, value_name = "FIELD")]
    field: String,
    /// The change whose value to put back: a hash or unique prefix, as
    /// `history` prints it.
    #[arg(long, value_name = "CHANGE")]
    to: String,
}

pub(crate) const HISTORY_EXAMPLES: &str = "Examples:
  rapport history 7Xk2                  # every change: when, who, which fields
  rapport history 7Xk2 --field stage    # the stage after each change to it
  rapport --json history 9aQe

Times are the author's clock, UTC. People show by the name they gave when
they created or joined the workspace (learned by `rapport sync`; clients,
who may not list members, know only their own), otherwise by key.";

pub(crate) const RESTORE_EXAMPLES: &str = "Examples:
  rapport history 7Xk2 --field stage
  rapport restore 7Xk2 --field stage --to 3f2a9c1b0d4e

The value the field had as of that change is written as a new change, which
syncs like any edit; history keeps both.";

pub(crate) fn history(ctx: &Context, args: &HistoryArgs) -> Result<()> {
    let repo = ctx.repo()?;
    let id = document(&repo, &args.id)?;
    let people = People::new(ctx, &repo)?;
    let (human, json) = match &args.field {
        None => {
            let changes = repo.read(id, history::changes)?;
            let rows: Vec<Vec<String>> = changes
                .iter()
                .map(|c| row(&people, c, c.fields.join(", ")))
                .collect();
            let json = changes.iter().map(|c| change_json(&people, c)).collect();
            (rows, json)
        }
        Some(field) => {
            let changes = repo.read(id, |doc| history::field_history(doc, field))??;
            let rows = changes
                .iter()
                .map(|c| row(&people, &c.change, value_text(c)))
                .collect();
            let json = changes
                .iter()
                .map(|c| {
                    let mut shown = change_json(&people, &c.change);
                    shown["value"] = c.value.clone().unwrap_or(Value::Null);
                    shown["removed"] = c.value.is_none().into();
                    shown
                })
                .collect();
            (rows, json)
        }
    };
    let last = if args.field.is_some() {
        "VALUE"
    } else {
        "FIELDS"
    };
    let human = if human.is_empty() {
        format!("{id} has no changes in this replica")
    } else {
        table(&["CHANGE", "WHEN (UTC)", "WHO", last], &human)
    };
    ctx.print(human, Value::Array(json));
    Ok(())
}

pub(crate) fn restore(ctx: &Context, args: &RestoreArgs) -> Result<()> {
    let repo = ctx.repo()?;
    let id = document(&repo, &args.id)?;
    let restored = history::restore(&repo, id, &args.field, &args.to)?;
    let from = short_hash(&restored.from.to_string());
    let value = restored
        .value
        .as_ref()
        .map_or_else(|| "(none: removed)".to_owned(), Value::to_string);
    let human = match restored.change {
        Some(change) => format!(
            "{} of {} is {value} again, as of change {from}; new change {}",
            args.field,
            short_id(&id.to_string()),
            short_hash(&change.to_string())
        ),
        None => format!(
            "{} of {} already holds its value as of change {from} ({value}); nothing changed",
            args.field,
            short_id(&id.to_string())
        ),
    };
    ctx.print(
        human,
        json!({
            "id": id.to_string(),
            "field": args.field,
            "from": restored.from.to_string(),
            "value": restored.value,
            "change": restored.change.map(|c| c.to_string()),
        }),
    );
    Ok(())
}

/// The document whose id starts with `prefix`, among every document of the
/// replica.
fn document(repo: &Repo, prefix: &str) -> Result<DocumentId> {
    let ids = repo.document_ids()?;
    let bare = prefix.strip_prefix("automerge:").unwrap_or(prefix);
    if !bare.is_empty() && !ids.iter().any(|id| id.to_string().starts_with(bare)) {
        bail!(
            "no record with an id starting `{bare}`; `rapport customer list`, `rapport task list` or `rapport doc list` shows them"
        );
    }
    resolve(prefix, ids, "record")
}

fn row(people: &People, change: &ChangeInfo, last: String) -> Vec<String> {
    vec![
        short_hash(&change.hash.to_string()),
        change.time.map_or_else(|| "-".to_owned(), time_text),
        people.author(change),
        last,
    ]
}

fn change_json(people: &People, change: &ChangeInfo) -> Value {
    json!({
        "hash": change.hash.to_string(),
        "time": change.time,
        "author": change.author.map(|key| json!({
            "key": key.to_string(),
            "name": people.name(&key),
        })),
        "actor": change.actor.to_hex_string(),
        "message": change.message,
        "fields": change.fields,
    })
}

fn value_text(change: &FieldChange) -> String {
    const WIDE: usize = 60;
    match &change.value {
        None => "(removed)".to_owned(),
        Some(value) => {
            let text = value.to_string();
            if text.chars().count() > WIDE {
                format!("{}…", text.chars().take(WIDE).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// The people a replica can name: today only its own person.
pub(crate) struct People {
    me: PublicKey,
    my_name: String,
    /// Other members' names, as the last `rapport sync` learned them.
    others: std::collections::BTreeMap<String, String>,
}

impl People {
    pub(crate) fn new(ctx: &Context, repo: &Repo) -> Result<Self> {
        Ok(Self {
            me: repo.public_key(),
            my_name: ctx.settings()?.name,
            others: ctx.workspace().map(|w| w.names).unwrap_or_default(),
        })
    }

    /// The name of `key`, if this replica knows it.
    pub(crate) fn name(&self, key: &PublicKey) -> Option<&str> {
        if *key == self.me && !self.my_name.is_empty() {
            return Some(self.my_name.as_str());
        }
        self.others.get(&key.to_string()).map(String::as_str)
    }

    /// `Ann Lee (3xPQmrvp)` or, for a key without a name, `3xPQmrvp`.
    pub(crate) fn label(&self, key: &str) -> String {
        let name = key.parse().ok().and_then(|key| self.name(&key));
        match name {
            Some(name) => format!("{name} ({})", short_id(key)),
            None => short_id(key),
        }
    }

    fn author(&self, change: &ChangeInfo) -> String {
        match change.author {
            Some(key) => self.label(&key.to_string()),
            None => format!("actor {}", short_id(&change.actor.to_hex_string())),
        }
    }
}

pub(crate) fn short_id(id: &str) -> String {
    id.chars().take(SHORT_ID).collect()
}

fn short_hash(hash: &str) -> String {
    hash.chars().take(SHORT_HASH).collect()
}

/// `YYYY-MM-DD HH:MM` (UTC) for unix seconds.
fn time_text(seconds: i64) -> String {
    let minute_of_day = seconds.rem_euclid(86_400) / 60;
    let millis = u64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(1000));
    match millis.and_then(|m| rapport_model::Date::utc(UnixMillis(m))) {
        Some(day) => format!("{day} {:02}:{:02}", minute_of_day / 60, minute_of_day % 60),
        None => format!("@{seconds}"),
    }
}

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|cell| (*cell).to_owned()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_minutes() {
        assert_eq!(time_text(0), "1970-01-01 00:00");
        assert_eq!(time_text(951_868_799), "2000-02-29 23:59");
        assert_eq!(time_text(-1), "@-1");
    }

    #[test]
    fn tables_align_and_trim() {
        let rows = vec![vec!["a".into(), "long cell".into(), "x".into()]];
        assert_eq!(
            table(&["ID", "NAME", "NOTE"], &rows),
            "ID  NAME       NOTE\na   long cell  x"
        );
    }
}
