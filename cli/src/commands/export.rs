//! `rapport export`: every document of this replica as files that read
//! without rapport (see `rapport_model::export`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use rapport_model::export::{Manifest, document_files};
use serde_json::json;

use crate::context::{Context, now_millis, today};

pub(crate) fn run(ctx: &Context, to: Option<&Path>) -> Result<()> {
    let repo = ctx.repo()?;
    let to: PathBuf = match to {
        Some(to) => to.to_owned(),
        None => PathBuf::from(format!("rapport-export-{}", today()?)),
    };
    if to.exists()
        && std::fs::read_dir(&to)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} is not an empty folder; give --to a new or empty one",
            to.display()
        );
    }
    // Written beside the target, then renamed: a failed export leaves no
    // folder that looks complete.
    let mut partial = to.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_dir_all(&partial);
    let written = write(ctx, &repo, &partial);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    let count = written?;
    if to.exists() {
        std::fs::remove_dir(&to)
            .with_context(|| format!("replacing the empty {}", to.display()))?;
    }
    std::fs::rename(&partial, &to)
        .with_context(|| format!("naming the export {}", to.display()))?;
    ctx.print(
        format!("exported {count} document(s) to {}", to.display()),
        json!({ "to": to, "documents": count }),
    );
    Ok(())
}

fn write(ctx: &Context, repo: &rapport_client::Repo, dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // The workspace, when this home belongs to exactly one: a replica
    // keeps the documents of all of its workspaces together.
    let workspaces = ctx.settings().map(|s| s.workspaces).unwrap_or_default();
    let workspace = match workspaces.as_slice() {
        [only] => Some(only.id.clone()),
        _ => None,
    };
    let mut manifest = Manifest::new(workspace, repo.public_key().to_string(), now_millis());
    let ids = repo.document_ids()?;
    let show_progress = !ctx.json && ids.len() >= 100;
    for (n, id) in ids.iter().enumerate() {
        let (entry, files) = repo.read(*id, |doc| document_files(*id, doc))?;
        for file in files {
            let path = dir.join(&file.name);
            std::fs::write(&path, &file.bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        manifest.documents.push(entry);
        if show_progress && (n + 1) % 100 == 0 {
            eprint!("\rexported {}/{}", n + 1, ids.len());
        }
    }
    if show_progress {
        eprintln!("\rexported {}/{}", ids.len(), ids.len());
    }
    let file = manifest.file();
    std::fs::write(dir.join(&file.name), &file.bytes)
        .with_context(|| format!("writing the manifest in {}", dir.display()))?;
    Ok(ids.len())
}
