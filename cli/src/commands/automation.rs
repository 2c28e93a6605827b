//! `rapport automation add|list|remove|examples`: the current workspace's
//! rules, edited in this replica and run by the relay once they sync.

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use rapport_client::Repo;
use rapport_model::automation::{EXAMPLES, Rule};
use serde_json::json;

use super::history::table;
use crate::context::Context;

#[derive(Debug, Subcommand)]
pub(crate) enum AutomationCommand {
    /// Add a rule: `when EVENT [if CONDITION] then ACTION`.
    #[command(after_help = ADD_HELP)]
    Add {
        /// The rule, in one argument (quote it).
        #[arg(required_unless_present = "example", conflicts_with = "example")]
        rule: Option<String>,
        /// Add one of the shipped examples by name (`rapport automation examples`).
        #[arg(long)]
        example: Option<String>,
    },
    /// The rules, with how often each ran and its last failure.
    #[command(after_help = "Example:\n  rapport automation list --json")]
    List,
    /// Remove a rule by its id.
    #[command(after_help = "Example:\n  rapport automation remove 3fa9c2d1")]
    Remove { id: String },
    /// The rules rapport ships, ready to add.
    Examples,
}

const ADD_HELP: &str = r#"Examples:
  rapport automation add --example invoice-when-order-fulfilled
  rapport automation add 'when task.status changes to done if tags has order then create task title="Invoice: {title}" due=+0d'
  rapport automation add 'when form submitted support then webhook https://hooks.example/rapport'

Events:     KIND.FIELD changes [to VALUE] (KIND: task, customer, doc),
            form submitted [NAME], document shared
Conditions: FIELD is VALUE, FIELD is not VALUE, FIELD has VALUE (lists)
Actions:    create task FIELD=VALUE…, set FIELD=VALUE, comment TEXT,
            webhook URL
Values may name the record's fields: {title}, {name}, {id}, {form:NAME}.
The relay runs each rule once per event; `rapport sync` sends it there."#;

pub(crate) fn run(ctx: &Context, command: AutomationCommand) -> Result<()> {
    match command {
        AutomationCommand::Add { rule, example } => add(ctx, rule, example),
        AutomationCommand::List => list(ctx),
        AutomationCommand::Remove { id } => remove(ctx, &id),
        AutomationCommand::Examples => {
            let rows: Vec<Vec<String>> = EXAMPLES
                .iter()
                .map(|(name, text)| vec![(*name).to_owned(), (*text).to_owned()])
                .collect();
            let json: Vec<_> = EXAMPLES
                .iter()
                .map(|(name, text)| json!({ "name": name, "rule": text }))
                .collect();
            ctx.print(table(&["NAME", "RULE"], &rows), json.into());
            Ok(())
        }
    }
}

fn add(ctx: &Context, rule: Option<String>, example: Option<String>) -> Result<()> {
    let text = match (rule, example) {
        (Some(text), _) => text,
        (None, Some(name)) => EXAMPLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| (*text).to_owned())
            .ok_or_else(|| {
                let names: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
                anyhow!("no example `{name}`: the examples are {}", names.join(", "))
            })?,
        (None, None) => bail!("give a rule, or --example NAME"),
    };
    let rule = Rule::parse(&text).map_err(|e| anyhow!("not a rule: {e}"))?;
    let workspace = ctx.workspace()?;
    let repo = ctx.repo()?;
    let fresh = repo.automations(&workspace.id)?.is_empty();
    let id = repo.add_automation(&workspace.id, &rule)?;
    if fresh {
        ctx.created(Repo::automations_id(&workspace.id), None)?;
    }
    ctx.print(
        format!("added automation {id}: {rule}\n(`rapport sync` sends it to the relay)"),
        json!({ "id": id, "rule": rule.to_string() }),
    );
    Ok(())
}

fn list(ctx: &Context) -> Result<()> {
    let workspace = ctx.workspace()?;
    let rules = ctx.repo()?.automations(&workspace.id)?;
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.runs.to_string(),
                r.status.failures.to_string(),
                r.status.last_error.clone().unwrap_or_default(),
                r.text.clone(),
            ]
        })
        .collect();
    let json: Vec<_> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "rule": r.text, "by": r.by, "at": r.at,
                "runs": r.status.runs, "failures": r.status.failures,
                "last_error": r.status.last_error, "last_at": r.status.last_at,
            })
        })
        .collect();
    let human = if rows.is_empty() {
        "no automations yet: `rapport automation examples` shows some to add".to_owned()
    } else {
        table(&["ID", "RUNS", "FAILED", "LAST ERROR", "RULE"], &rows)
    };
    ctx.print(human, json.into());
    Ok(())
}

fn remove(ctx: &Context, id: &str) -> Result<()> {
    let workspace = ctx.workspace()?;
    if !ctx.repo()?.remove_automation(&workspace.id, id)? {
        bail!("no automation `{id}` in this workspace; `rapport automation list` shows them");
    }
    ctx.print(format!("removed automation {id}"), json!({ "removed": id }));
    Ok(())
}
