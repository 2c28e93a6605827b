//! Workspaces' storage: how many bytes each takes (the sum of its
//! documents' sizes, `storage::sizes`), the quota that refuses writes past
//! `--max-workspace-bytes`, and the largest workspaces' sizes for
//! `/metrics`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rapport_protocol::ids::DocumentId;

use super::{Relay, lock};

/// How long a workspace's size is reused before it is added up again: a
/// quota may be passed by what a second of writes adds.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// How many workspaces `/metrics` names; the rest are summed as `other`,
/// so that a relay of many workspaces does not make many series.
pub(crate) const NAMED_IN_METRICS: usize = 20;

impl Relay {
    /// Whether `document`'s workspace holds as much as the quota allows.
    pub(crate) fn workspace_full(&self, document: DocumentId) -> bool {
        let limit = self.config.limits.max_workspace_bytes;
        if limit == 0 {
            return false;
        }
        let Some(ws) = lock(&self.workspaces).home_of(document).map(str::to_owned) else {
            return false;
        };
        self.workspace_bytes(&ws) >= limit
    }

    /// Counts `bytes` just stored for `document` in its workspace's size,
    /// so that the quota holds between two adding-ups.
    pub(crate) fn note_written(&self, document: DocumentId, bytes: u64) {
        if self.config.limits.max_workspace_bytes == 0 {
            return;
        }
        let Some(ws) = lock(&self.workspaces).home_of(document).map(str::to_owned) else {
            return;
        };
        if let Some((_, size)) = lock(&self.usage).get_mut(&ws) {
            *size += bytes;
        }
    }

    /// The bytes workspace `ws`'s documents take, at most [`FRESH_FOR`] old.
    pub(crate) fn workspace_bytes(&self, ws: &str) -> u64 {
        let mut usage = lock(&self.usage);
        if let Some((at, bytes)) = usage.get(ws)
            && at.elapsed() < FRESH_FOR
        {
            return *bytes;
        }
        let bytes = {
            let workspaces = lock(&self.workspaces);
            workspaces
                .get(ws)
                .map(|w| self.store.size_of_all(w.documents.keys()))
                .unwrap_or(0)
        };
        usage.insert(ws.to_owned(), (Instant::now(), bytes));
        bytes
    }

    /// `rapport_workspace_bytes`, for the largest workspaces by name and
    /// the others together.
    pub(crate) fn render_workspace_sizes(&self) -> String {
        let mut sizes: Vec<(String, u64)> = {
            let workspaces = lock(&self.workspaces);
            workspaces
                .ids()
                .filter_map(|id| {
                    let w = workspaces.get(id).ok()?;
                    Some((id.to_owned(), self.store.size_of_all(w.documents.keys())))
                })
                .collect()
        };
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut out = String::from(
            "# HELP rapport_workspace_bytes Bytes a workspace's documents take in the database (the largest by id, the rest as \"other\").\n# TYPE rapport_workspace_bytes gauge\n",
        );
        let other: u64 = sizes.iter().skip(NAMED_IN_METRICS).map(|(_, b)| b).sum();
        for (id, bytes) in sizes.iter().take(NAMED_IN_METRICS) {
            let _ = writeln!(out, "rapport_workspace_bytes{{workspace=\"{id}\"}} {bytes}");
        }
        if sizes.len() > NAMED_IN_METRICS {
            let _ = writeln!(
                out,
                "rapport_workspace_bytes{{workspace=\"other\"}} {other}"
            );
        }
        out
    }
}
