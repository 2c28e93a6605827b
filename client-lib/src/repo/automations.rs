//! A workspace's automation rules, kept in its automations document (see
//! `rapport_model::automation::document`). The relay runs them; the
//! replica only edits and lists them, offline like everything else.

use rapport_model::automation::Rule;
use rapport_model::automation::document::{self, StoredRule};
use rapport_protocol::ids::DocumentId;

use super::{Repo, now};
use crate::ClientError;

impl Repo {
    /// The id of `workspace`'s automations document.
    pub fn automations_id(workspace: &str) -> DocumentId {
        document::document_id(workspace)
    }

    /// Adds `rule` to `workspace`'s automations, making the document if this
    /// replica has none; returns the new rule's id. Rules added on two
    /// replicas at once both survive the merge.
    pub fn add_automation(&self, workspace: &str, rule: &Rule) -> Result<String, ClientError> {
        let id = format!("{:08x}", rand::random::<u32>());
        let by = self.public_key().to_string();
        // Later than every rule this replica has, so that two added in the
        // same millisecond are still listed in the order they were added.
        let latest = self.automations(workspace)?.iter().map(|r| r.at).max();
        let now = i64::try_from(now().0).unwrap_or(i64::MAX);
        let at = latest.map_or(now, |latest| now.max(latest.saturating_add(1)));
        let text = rule.to_string();
        self.create_at(Self::automations_id(workspace), |tx| {
            document::add_rule(tx, workspace, &id, &text, &by, at)
        })?;
        Ok(id)
    }

    /// `workspace`'s rules with what the relay reported about each, oldest
    /// first; none if this replica has no automations document.
    pub fn automations(&self, workspace: &str) -> Result<Vec<StoredRule>, ClientError> {
        match self.read(Self::automations_id(workspace), document::rules) {
            Ok(rules) => Ok(rules),
            Err(ClientError::UnknownDocument { .. }) => Ok(Vec::new()),
            Err(other) => Err(other),
        }
    }

    /// Removes rule `id`; `false` if there is none.
    pub fn remove_automation(&self, workspace: &str, id: &str) -> Result<bool, ClientError> {
        let doc = Self::automations_id(workspace);
        if !self.automations(workspace)?.iter().any(|r| r.id == id) {
            return Ok(false);
        }
        self.change(doc, |tx| document::remove_rule(tx, id))
    }
}
