//! Roles in a workspace, access levels on shared documents, and the rule
//! that turns them into what a person may do with one document: the words
//! the relay and its clients share, and the one place that decides.

use serde::{Deserialize, Serialize};

/// A member's role in a workspace, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
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
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Read the record and its comments.
    Read,
    /// Read the record; write its comment thread.
    Comment,
    /// Read and write the record and its comments.
    Write,
}

/// What a person may do with one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Access {
    /// The document does not exist for them: answered exactly as a
    /// document that does not exist.
    None,
    /// Receive changes; changes sent are refused.
    Read,
    /// A comment thread, for a client: add comments, and change or resolve
    /// only their own ([`crate::record::commenting`] says exactly what).
    Comment,
    /// Read and write.
    Write,
}

impl Access {
    /// Whether changes may be sent at all.
    pub fn may_write(self) -> bool {
        self >= Self::Comment
    }
}

impl Level {
    /// The access this level gives to the record itself.
    pub fn on_record(self) -> Access {
        match self {
            Self::Read | Self::Comment => Access::Read,
            Self::Write => Access::Write,
        }
    }

    /// The access this level gives to the record's comment thread: a
    /// client comments (and changes their own comments) whatever their
    /// level on the record; only staff change anyone's.
    pub fn on_thread(self) -> Access {
        match self {
            Self::Read => Access::Read,
            Self::Comment | Self::Write => Access::Comment,
        }
    }
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

    #[test]
    fn comment_is_write_on_the_thread_and_read_on_the_record() {
        assert_eq!(Level::Comment.on_record(), Access::Read);
        assert_eq!(Level::Comment.on_thread(), Access::Comment);
        assert_eq!(Level::Write.on_thread(), Access::Comment);
        assert_eq!(Level::Read.on_thread(), Access::Read);
        assert_eq!(Level::Write.on_record(), Access::Write);
        assert!(Access::None < Access::Read && Access::Read < Access::Comment);
        assert!(Access::Comment < Access::Write && Access::Comment.may_write());
        assert!(!Access::Read.may_write());
    }
}
