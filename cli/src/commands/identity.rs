//! `rapport init`, `rapport key` and `rapport whoami`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use rapport_client::Repo;
use rapport_client::identity::{KeyFile, write_private};
use serde_json::json;

use crate::context::{Context, Settings};

/// `rapport key …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Write your key to a file (readable by you only) for the web app's
    /// "import key" or `rapport init --import` on another device. Whoever
    /// holds the file is you: keep it safe and delete it once imported.
    #[command(after_help = "Example:\n  rapport key export ann.rapport-key.json")]
    Export {
        /// The file to write; it must not exist yet.
        file: PathBuf,
    },
}

pub(crate) fn init(ctx: &Context, name: Option<&str>, import: Option<&Path>) -> Result<()> {
    let imported = match import {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the key file {}", path.display()))?;
            let parsed = KeyFile::parse(&text)
                .with_context(|| format!("{} cannot be imported", path.display()))?;
            Some(parsed)
        }
        None => None,
    };
    let name = name
        .map(str::to_owned)
        .or_else(|| imported.as_ref().map(|(file, _)| file.name.clone()))
        .unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        bail!("a name is needed: rapport init --name \"Ann Lee\"");
    }
    let repo = match imported {
        Some((_, key)) => Repo::init_with_key(&ctx.home, key)?,
        None => Repo::init(&ctx.home)?,
    };
    ctx.save_settings(&Settings {
        name: name.to_owned(),
        ..Settings::default()
    })?;
    ctx.print(
        format!(
            "initialised {}\nname     {name}\nkey      {}\nthe secret key is in {} (readable by you only)",
            ctx.home.display(),
            repo.public_key(),
            ctx.home.join(rapport_client::identity::KEY_FILE).display()
        ),
        json!({ "home": ctx.home, "name": name, "key": repo.public_key().to_string() }),
    );
    Ok(())
}

pub(crate) fn whoami(ctx: &Context) -> Result<()> {
    let repo = ctx.repo()?;
    let settings = ctx.settings()?;
    let current = settings
        .current
        .as_deref()
        .and_then(|id| settings.workspaces.iter().find(|w| w.id == id));
    let workspace = current.map(|w| format!("{} ({}, {:?})", w.name, w.id, w.role).to_lowercase());
    ctx.print(
        format!(
            "name       {}\nkey        {}\nhome       {}\nworkspace  {}",
            settings.name,
            repo.public_key(),
            ctx.home.display(),
            workspace.as_deref().unwrap_or("none")
        ),
        json!({
            "name": settings.name,
            "key": repo.public_key().to_string(),
            "home": ctx.home,
            "workspace": current.map(|w| json!({"id": w.id, "name": w.name, "role": w.role, "relays": w.relays, "relay": w.relays.first().to_string()})),
        }),
    );
    Ok(())
}

pub(crate) fn run_key(ctx: &Context, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Export { file } => {
            let repo = ctx.repo()?;
            let exported = repo.identity().export(&ctx.settings()?.name);
            let text = serde_json::to_string_pretty(&exported)?;
            write_private(&file, text.as_bytes()).with_context(|| {
                format!("cannot write {} (it must not exist yet)", file.display())
            })?;
            ctx.print(
                format!(
                    "wrote your key to {} (readable by you only); import it with the web app's \"Import key\" or `rapport init --import`, then delete it",
                    file.display()
                ),
                json!({ "file": file, "key": exported.public_key }),
            );
            Ok(())
        }
    }
}
