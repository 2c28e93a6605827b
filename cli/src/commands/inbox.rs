//! `rapport inbox`: the notifications the relay keeps for you (mentions,
//! assignments, tasks due today), marking them read, and e-mail.

use anyhow::Result;
use clap::Subcommand;
use rapport_model::api::Notification;
use serde_json::json;

use crate::context::Context;

#[derive(Debug, Subcommand)]
pub(crate) enum InboxCommand {
    /// Mark notifications read: these ids, or every one when none is named.
    #[command(
        after_help = "Examples:\n  rapport inbox read mention:7Xk2…:c0ffee12\n  rapport inbox read"
    )]
    Read {
        /// Notification ids, as `rapport inbox` shows them.
        ids: Vec<String>,
    },
    /// Have the relay e-mail your notifications in this workspace to
    /// ADDRESS (`off` stops it); it needs its operator to have set up SMTP.
    #[command(
        after_help = "Examples:\n  rapport inbox email ann@agency.example\n  rapport inbox email off"
    )]
    Email {
        /// An e-mail address, or `off`.
        address: String,
    },
}

pub(crate) fn run(ctx: &Context, command: Option<InboxCommand>, all: bool) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    match command {
        None => {
            let notifications = api.notifications(&workspace.id, all)?;
            let human = if notifications.is_empty() {
                if all {
                    "no notifications".to_owned()
                } else {
                    "no unread notifications (`rapport inbox --all` shows read ones too)".to_owned()
                }
            } else {
                notifications
                    .iter()
                    .map(line)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            ctx.print(human, serde_json::to_value(&notifications)?);
        }
        Some(InboxCommand::Read { ids }) => {
            let marked = api.mark_read(&workspace.id, &ids)?;
            ctx.print(
                format!("marked {marked} notification(s) read"),
                json!({ "marked": marked }),
            );
        }
        Some(InboxCommand::Email { address }) => {
            let email = (address != "off").then_some(address.as_str());
            api.set_notify_email(&workspace.id, email)?;
            let human = match email {
                Some(to) => format!(
                    "notifications in {} are e-mailed to {to} (when the relay's operator has set up e-mail)",
                    workspace.name
                ),
                None => format!("notifications in {} are no longer e-mailed", workspace.name),
            };
            ctx.print(human, json!({ "email": email }));
        }
    }
    Ok(())
}

/// `2026-12-05T09:00:00Z  mention  Kick-off  by Sam Staff: “can you call them?”  [id]`
fn line(n: &Notification) -> String {
    let at = rapport_model::date::utc_timestamp(rapport_protocol::ids::UnixMillis(n.at));
    let who = n
        .by_name
        .clone()
        .or_else(|| n.by.map(|k| k.to_string().chars().take(10).collect()));
    let by = who.map(|w| format!("  by {w}")).unwrap_or_default();
    let text = if n.text.is_empty() {
        String::new()
    } else {
        format!(": “{}”", n.text)
    };
    let unread = if n.read { " " } else { "*" };
    format!(
        "{unread} {at}  {:<9} {}{by}{text}  [{}]",
        n.kind, n.title, n.id
    )
}
