//! String enums that keep values they do not know.
//!
//! A newer peer may write a stage, status or priority this version has never
//! heard of (say stage `"on-hold"`). It reads as `Other("on-hold")` and is
//! written back exactly as it was, so an older peer never clobbers it.
//! Build values from text with `From<&str>`, which maps known names to their
//! variants: `Stage::from("won") == Stage::Won`.

use std::fmt;

use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as written.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// Whether this version knows the value (it is not `Other`).
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }

            /// The value as stored in documents.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(text) => text,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Reconcile for $name {
            type Key<'a> = autosurgeon::reconcile::NoKey;

            fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
                reconciler.str(self.as_str())
            }
        }

        impl Hydrate for $name {
            fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
                Ok(Self::from(text))
            }

            /// A text object (what JS automerge 3 writes for a plain
            /// string) reads as its text.
            fn hydrate_text<D: autosurgeon::ReadDoc>(
                doc: &D,
                obj: &automerge::ObjId,
            ) -> Result<Self, HydrateError> {
                Ok(Self::from(doc.text(obj)?.as_str()))
            }
        }
    };
}

string_enum! {
    /// What kind of relationship a customer record describes.
    Relationship, default Customer {
        /// Long-term, on a retainer, with a dedicated manager.
        Client => "client",
        /// Transactional.
        Customer => "customer",
    }
}

string_enum! {
    /// Where a customer is in its lifecycle.
    Stage, default Lead {
        /// Known, not yet qualified.
        Lead => "lead",
        /// Qualified, in conversation.
        Prospect => "prospect",
        /// An offer is out.
        Proposal => "proposal",
        /// The deal is signed.
        Won => "won",
        /// The deal is off.
        Lost => "lost",
        /// A customer with ongoing business.
        Active => "active",
        /// A customer who left.
        Churned => "churned",
    }
}

string_enum! {
    /// Where a task or order stands.
    Status, default Open {
        /// Not started.
        Open => "open",
        /// Someone is on it.
        InProgress => "in_progress",
        /// Waiting on something else.
        Blocked => "blocked",
        /// Finished.
        Done => "done",
        /// Dropped.
        Cancelled => "cancelled",
    }
}

string_enum! {
    /// How urgent a task or order is.
    Priority, default Normal {
        /// Whenever there is time.
        Low => "low",
        /// The usual.
        Normal => "normal",
        /// Before the usual.
        High => "high",
        /// Drop everything.
        Urgent => "urgent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_round_trip() {
        for stage in Stage::KNOWN {
            assert_eq!(&Stage::from(stage.as_str()), stage);
        }
        for status in Status::KNOWN {
            assert_eq!(&Status::from(status.as_str()), status);
        }
        for priority in Priority::KNOWN {
            assert_eq!(&Priority::from(priority.as_str()), priority);
        }
        for relationship in Relationship::KNOWN {
            assert_eq!(&Relationship::from(relationship.as_str()), relationship);
        }
    }

    #[test]
    fn unknown_names_are_kept() {
        assert_eq!(Stage::from("on-hold"), Stage::Other("on-hold".into()));
        assert_eq!(Stage::from("on-hold").as_str(), "on-hold");
        assert_eq!(Status::from("In_Progress").to_string(), "In_Progress");
    }
}
