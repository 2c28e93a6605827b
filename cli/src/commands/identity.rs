//! `rapport init` and `rapport whoami`.

use anyhow::{Result, bail};
use rapport_client::Repo;
use serde_json::json;

use crate::context::{Context, Settings};

pub(crate) fn init(ctx: &Context, name: &str) -> Result<()> {
    let name = name.trim();
    if name.is_empty() {
        bail!("a name is needed: rapport init --name \"Ann Lee\"");
    }
    let repo = Repo::init(&ctx.home)?;
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
            "workspace": current.map(|w| json!({"id": w.id, "name": w.name, "role": w.role, "relay": w.relay})),
        }),
    );
    Ok(())
}
