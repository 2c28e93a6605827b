//! What every command needs: the home folder, its replica and settings, the
//! current workspace, and printing for people or as JSON.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use rapport_client::api::{RelayApi, Role};
use rapport_client::index::IndexEntry;
use rapport_client::relay_url::RelayList;
use rapport_client::{Relays, Repo};
use rapport_protocol::ids::DocumentId;
use serde::{Deserialize, Serialize};

/// The settings file in the home folder.
const SETTINGS_FILE: &str = "settings.json";

/// A workspace this home belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkspaceEntry {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The relay's addresses: one, or several relays of one cluster, tried
    /// in turn. Kept as `relay`, one URL, before lists; read from there too.
    #[serde(alias = "relay")]
    pub(crate) relays: RelayList,
    /// The relay id (token audience).
    pub(crate) relay_id: String,
    pub(crate) role: Role,
    /// Documents made here that the next sync puts in the workspace on the
    /// relay, with the record each comment thread belongs to.
    #[serde(default)]
    pub(crate) pending: Vec<(DocumentId, Option<DocumentId>)>,
    /// Members' names by key, as the relay last listed them.
    #[serde(default)]
    pub(crate) names: std::collections::BTreeMap<String, String>,
}

impl WorkspaceEntry {
    /// The relay's addresses and the relay id they all answer to.
    pub(crate) fn relays(&self) -> Relays {
        Relays {
            urls: self.relays.clone(),
            audience: Some(self.relay_id.clone()),
        }
    }

    /// The relay's API as this replica's person, at the first of its
    /// addresses that answers (`GET /api/info`), in turn from the one a
    /// sync last connected to. With one address, that one, unasked.
    pub(crate) fn api(&self, repo: &Repo) -> Result<RelayApi> {
        let relays = self.relays();
        let turn = relays.urls.in_turn_from(repo.last_relay(&relays)?.as_ref());
        let answering = match turn.as_slice() {
            [one] => one,
            several => several
                .iter()
                .find(|url| RelayApi::info(url).is_ok())
                .unwrap_or(&several[0]),
        };
        Ok(RelayApi::new(
            &relays.config(answering),
            repo.identity().clone(),
        )?)
    }
}

/// The home's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Settings {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) workspaces: Vec<WorkspaceEntry>,
    /// The id of the workspace commands act on.
    #[serde(default)]
    pub(crate) current: Option<String>,
}

/// The command's environment.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) home: PathBuf,
    pub(crate) json: bool,
}

impl Context {
    pub(crate) fn new(home: Option<PathBuf>, json: bool) -> Result<Self> {
        let home = match home {
            Some(home) => home,
            None => default_home()?,
        };
        Ok(Self { home, json })
    }

    /// The replica; a clear error if the home was never initialised.
    pub(crate) fn repo(&self) -> Result<Repo> {
        Ok(Repo::open(&self.home)?)
    }

    pub(crate) fn settings(&self) -> Result<Settings> {
        let path = self.home.join(SETTINGS_FILE);
        if !path.exists() {
            self.repo()?; // says "run rapport init" if that is the problem
            return Ok(Settings::default());
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged; fix or remove it", path.display()))
    }

    pub(crate) fn save_settings(&self, settings: &Settings) -> Result<()> {
        let path = self.home.join(SETTINGS_FILE);
        let tmp = self.home.join(format!("{SETTINGS_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(settings)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The current workspace.
    pub(crate) fn workspace(&self) -> Result<WorkspaceEntry> {
        let settings = self.settings()?;
        let current = settings
            .current
            .clone()
            .ok_or_else(|| anyhow!("no workspace yet: run `rapport workspace create NAME --relay URL` or `rapport join LINK`"))?;
        settings
            .workspaces
            .into_iter()
            .find(|w| w.id == current)
            .ok_or_else(|| anyhow!("the current workspace {current} is not in this home; run `rapport workspace use ID`"))
    }

    /// The relay API as this person, in the current workspace.
    pub(crate) fn api(&self) -> Result<(RelayApi, WorkspaceEntry)> {
        let workspace = self.workspace()?;
        let api = workspace.api(&self.repo()?)?;
        Ok((api, workspace))
    }

    /// Notes a document made here: the next `rapport sync` puts it in the
    /// current workspace (a comment thread with the record it belongs to).
    pub(crate) fn created(&self, id: DocumentId, thread_of: Option<DocumentId>) -> Result<()> {
        let mut settings = self.settings()?;
        let Some(current) = settings.current.clone() else {
            return Ok(());
        };
        if let Some(workspace) = settings.workspaces.iter_mut().find(|w| w.id == current) {
            workspace.pending.push((id, thread_of));
            self.save_settings(&settings)?;
        }
        Ok(())
    }

    /// Prints `human` for people, or `json` (exactly one value) with `--json`.
    pub(crate) fn print(&self, human: impl std::fmt::Display, json: serde_json::Value) {
        if self.json {
            println!("{json}");
        } else {
            let text = human.to_string();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }
}

/// The platform's data folder for rapport (`$XDG_DATA_HOME/rapport`,
/// `~/.local/share/rapport`, …).
fn default_home() -> Result<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(data).join("rapport"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("no home folder: set RAPPORT_HOME or pass --home DIR"))?;
    let base = Path::new(&home);
    if cfg!(target_os = "macos") {
        Ok(base.join("Library/Application Support/rapport"))
    } else {
        Ok(base.join(".local/share/rapport"))
    }
}

/// The one document whose id starts with `prefix`, among `candidates`.
pub(crate) fn resolve(
    prefix: &str,
    candidates: impl IntoIterator<Item = DocumentId>,
    what: &str,
) -> Result<DocumentId> {
    let prefix = prefix.strip_prefix("automerge:").unwrap_or(prefix);
    if prefix.is_empty() {
        bail!("an empty id: give the {what}'s id or a unique prefix of it");
    }
    let matches: Vec<DocumentId> = candidates
        .into_iter()
        .filter(|id| id.to_string().starts_with(prefix))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no {what} with an id starting `{prefix}`; `rapport {what} list` shows them"),
        many => bail!(
            "`{prefix}` matches {} {what}s ({}…); type more of the id",
            many.len(),
            many.iter()
                .take(3)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The index entries of one kind of record.
pub(crate) fn records_of_kind(repo: &Repo, kind: &str) -> Result<Vec<(DocumentId, IndexEntry)>> {
    Ok(repo
        .index()?
        .into_iter()
        .filter(|(_, entry)| entry.kind.as_str() == kind)
        .collect())
}

/// Today's date in UTC, from the system clock.
pub(crate) fn today() -> Result<rapport_model::Date> {
    rapport_model::Date::utc(rapport_client::now())
        .ok_or_else(|| anyhow::anyhow!("the system clock is out of range: set the date"))
}

/// Unix milliseconds now, as comments and the demo stamp them.
pub(crate) fn now_millis() -> i64 {
    i64::try_from(rapport_client::now().0).unwrap_or(i64::MAX)
}
