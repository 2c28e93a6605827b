//! Roles in a workspace and access levels on shared documents: the words
//! the relay and its clients share.

use serde::{Deserialize, Serialize};

/// A member's role in a workspace, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees only what is shared with them.
    Client,
    /// Reads and writes every document of the workspace.
    Staff,
    /// Staff who also invite, remove members and read the audit log.
    Admin,
    /// The admin who created the workspace.
    Owner,
}

impl Role {
    /// Staff or above.
    pub fn is_staff(self) -> bool {
        self >= Self::Staff
    }

    /// Admin or above.
    pub fn is_admin(self) -> bool {
        self >= Self::Admin
    }
}

/// What a client may do with one shared document, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Read the record and its comments.
    Read,
    /// Read the record; write its comment thread.
    Comment,
    /// Read and write the record and its comments.
    Write,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_levels_order_and_read_as_words() {
        assert!(Role::Owner.is_admin() && Role::Admin.is_staff() && !Role::Client.is_staff());
        assert!(Level::Read < Level::Comment && Level::Comment < Level::Write);
        assert_eq!(serde_json::to_string(&Role::Staff).unwrap(), "\"staff\"");
        assert_eq!(
            serde_json::from_str::<Level>("\"comment\"").unwrap(),
            Level::Comment
        );
        assert!(serde_json::from_str::<Level>("\"admin\"").is_err());
    }
}
