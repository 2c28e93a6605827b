//! `rapport share`: sharing a document with a member, listing what is
//! shared, and unsharing.

use anyhow::{Result, anyhow};
use clap::Subcommand;
use rapport_client::api::Level;
use serde_json::json;

use super::workspace::member_key;
use crate::context::{Context, resolve};

#[derive(Debug, Subcommand)]
pub(crate) enum ShareCommand {
    /// Every share of the workspace, or of one document (staff).
    List {
        /// The document's id or a unique prefix.
        document: Option<String>,
    },
    /// Stop sharing a document with a member: they stop receiving it at
    /// once; what their device already holds stays there.
    Remove {
        /// The document's id or a unique prefix.
        document: String,
        /// The member's key or a unique prefix.
        member: String,
    },
}

pub(crate) fn run_share(ctx: &Context, command: ShareCommand) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    match command {
        ShareCommand::List { document } => {
            let document = match document {
                Some(d) => Some(resolve(&d, ctx.repo()?.document_ids()?, "document")?),
                None => None,
            };
            let mut rows = Vec::new();
            for member in api.members(&workspace.id)? {
                for share in &member.shares {
                    if document.is_none_or(|d| d == share.document) {
                        rows.push((
                            share.document,
                            member.key,
                            member.name.clone(),
                            share.access,
                        ));
                    }
                }
            }
            rows.sort_by_key(|(doc, key, ..)| (*doc, *key));
            let human: String = rows
                .iter()
                .map(|(doc, key, name, access)| {
                    format!(
                        "{doc}  {:<8} {key}{}\n",
                        format!("{access:?}").to_lowercase(),
                        name.as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let json: Vec<_> = rows
                .iter()
                .map(|(doc, key, name, access)| {
                    json!({ "document": doc.to_string(), "member": key.to_string(), "name": name, "access": access })
                })
                .collect();
            ctx.print(
                if human.is_empty() {
                    "nothing is shared".to_owned()
                } else {
                    human.trim_end().to_owned()
                },
                json!(json),
            );
        }
        ShareCommand::Remove { document, member } => {
            let id = resolve(&document, ctx.repo()?.document_ids()?, "document")?;
            let key = member_key(&api, &workspace, &member)?;
            api.unshare(&workspace.id, id, &key)?;
            ctx.print(
                format!(
                    "{id} is no longer shared with {key}: they receive no more of it (what their device holds stays there)"
                ),
                json!({ "document": id.to_string(), "member": key.to_string(), "removed": true }),
            );
        }
    }
    Ok(())
}

pub(crate) fn share(ctx: &Context, document: &str, with: &str, access: Level) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    let repo = ctx.repo()?;
    let id = resolve(document, repo.document_ids()?, "document")?;
    let key = member_key(&api, &workspace, with)?;
    api.share(&workspace.id, id, &key, access)
        .map_err(|e| anyhow!("{e}; if the document was made offline, run `rapport sync` first"))?;
    ctx.print(
        format!(
            "shared {id} with {key} ({}); their replica fetches it on its next sync",
            format!("{access:?}").to_lowercase()
        ),
        json!({ "document": id.to_string(), "member": key.to_string(), "access": access }),
    );
    Ok(())
}
