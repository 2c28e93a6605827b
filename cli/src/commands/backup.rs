//! `rapport backup`: a copy of this replica's database, and putting one
//! back.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::context::Context;

pub(crate) fn run(
    ctx: &Context,
    to: Option<&Path>,
    restore_from: Option<&Path>,
    force: bool,
) -> Result<()> {
    if let Some(from) = restore_from {
        rapport_client::store::backup::restore(from, &ctx.home, force)?;
        ctx.print(
            format!("restored the replica from {}", from.display()),
            json!({ "restored": from }),
        );
        return Ok(());
    }
    let to = to.context("give --to FILE")?;
    let repo = ctx.repo()?;
    let bytes = repo.store().backup_to(to)?;
    ctx.print(
        format!(
            "wrote {} ({bytes} bytes); your key is not in it: keep it with `rapport key export`",
            to.display()
        ),
        json!({ "to": to, "bytes": bytes }),
    );
    Ok(())
}
