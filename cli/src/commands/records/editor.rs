//! The round trip of `doc edit` through the person's editor: the body goes
//! into a temporary file (readable by its owner only), the editor runs on
//! it, and the file's text comes back.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};

/// The editor to run: `$EDITOR`, else `$VISUAL`.
pub(super) fn command() -> Result<String> {
    ["EDITOR", "VISUAL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .ok_or_else(|| anyhow!("no editor: set EDITOR, e.g. `EDITOR=nano rapport doc edit ID`, or use `rapport doc append`"))
}

/// Runs `editor` on `path` and waits for it. Like git, the editor is a
/// shell command, so `EDITOR="code --wait"` works.
pub(super) fn run(editor: &str, path: &Path) -> Result<()> {
    let status = shell(editor)
        .arg(path)
        .status()
        .map_err(|error| anyhow!("cannot start the editor `{editor}` ({error}); check EDITOR"))?;
    if !status.success() {
        bail!("the editor `{editor}` exited with {status}; nothing was written");
    }
    Ok(())
}

#[cfg(unix)]
fn shell(editor: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(editor);
    command
}

#[cfg(not(unix))]
fn shell(editor: &str) -> Command {
    let mut words = editor.split_whitespace();
    let mut command = Command::new(words.next().unwrap_or(editor));
    command.args(words);
    command
}

/// The text as the editor left it, minus the final newline many editors add
/// when `original` had none.
pub(super) fn settle(original: &str, edited: String) -> String {
    if original.ends_with('\n') {
        return edited;
    }
    let trimmed = edited
        .strip_suffix("\r\n")
        .or_else(|| edited.strip_suffix('\n'));
    trimmed.map_or_else(|| edited.clone(), str::to_owned)
}

/// A temporary file with a draft; removed when dropped unless kept.
#[derive(Debug)]
pub(super) struct Draft {
    path: PathBuf,
    keep: bool,
}

impl Draft {
    /// A new file holding `text`, readable by its owner only.
    pub(super) fn write(text: &str) -> Result<Self> {
        let name = format!(
            "rapport-doc-{}-{:016x}.md",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let draft = Self { path, keep: false };
        let mut file = options
            .open(&draft.path)
            .with_context(|| format!("cannot write {}", draft.path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", draft.path.display()))?;
        Ok(draft)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text now.
    pub(super) fn read(&self) -> Result<String> {
        std::fs::read_to_string(&self.path).map_err(|error| {
            anyhow!(
                "cannot read {} ({error}); nothing was written",
                self.path.display()
            )
        })
    }

    /// Leaves the file in place (so a person's text is never lost) and
    /// returns where it is.
    pub(super) fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_round_trip_through_an_editor_and_vanish() {
        let draft = Draft::write("A portal.\n").unwrap();
        run(
            "sed -i -e 's/A portal/A self-service portal/'",
            draft.path(),
        )
        .unwrap();
        assert_eq!(draft.read().unwrap(), "A self-service portal.\n");
        let path = draft.path().to_owned();
        drop(draft);
        assert!(!path.exists());
        let error = run("false", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("nothing was written"), "{error}");
    }

    #[test]
    fn a_final_newline_the_editor_added_is_dropped() {
        assert_eq!(settle("no newline", "no newline\n".into()), "no newline");
        assert_eq!(settle("newline\n", "newline\n".into()), "newline\n");
        assert_eq!(settle("x", "y".into()), "y");
    }
}
