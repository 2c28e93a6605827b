//! Setting a record's field from text: `KEY=VALUE` as a person types it on
//! the command line, or as an automation rule's `set` and `create task`
//! actions write it. Each record type's `set` names its fields in its own
//! file; the readers of values live here, so that every field of a type is
//! read the same way wherever it is set. An empty value clears a field;
//! `field.NAME=VALUE` sets a custom field and `field.NAME=` removes it.

use std::collections::BTreeMap;
use std::fmt::Display;

use rapport_protocol::ids::{DocumentId, PublicKey};

use super::Kind;
use crate::date::{Date, DateError};

/// Why `KEY=VALUE` cannot be set on a record. The message is one line that
/// names the problem and shows the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// No field of the record has this name.
    #[error("unknown {kind} field `{key}`: use {known}, or field.NAME for a custom field")]
    UnknownField {
        kind: Kind,
        key: String,
        /// The fields there are.
        known: &'static str,
    },
    /// The value is not one the field takes; the message names the field.
    #[error("{message}")]
    BadValue { field: String, message: String },
}

fn bad(field: &str, message: String) -> EditError {
    EditError::BadValue {
        field: field.to_owned(),
        message,
    }
}

/// Text that must not be empty.
pub fn required(value: &str, field: &str) -> Result<String, EditError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(bad(
            field,
            format!("the {field} is empty: give one, e.g. {field}=\"Acme Ltd\""),
        ));
    }
    Ok(value.to_owned())
}

/// One of the `known` values of an enum, by name. Case and `-` for `_` do
/// not matter (`In-Progress` is `in_progress`). Unknown names are refused,
/// so a typo never becomes a new stage.
pub fn choose<T: Clone + Display>(value: &str, known: &[T], field: &str) -> Result<T, EditError> {
    let wanted = value.trim().to_lowercase().replace('-', "_");
    known
        .iter()
        .find(|known| known.to_string() == wanted)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<String> = known.iter().map(ToString::to_string).collect();
            bad(
                field,
                format!("unknown {field} `{value}`: use one of {}", names.join(", ")),
            )
        })
}

/// A date `YYYY-MM-DD`.
pub fn date(value: &str, field: &str) -> Result<Date, EditError> {
    value.trim().parse().map_err(|error| match error {
        DateError::Format(_) => bad(
            field,
            format!("{field}: `{value}` is not a date; write it as YYYY-MM-DD, e.g. 2025-03-31"),
        ),
        other => bad(
            field,
            format!("{field}: {other}; give a day that exists, as YYYY-MM-DD"),
        ),
    })
}

/// A date `YYYY-MM-DD`, or none for an empty value.
pub fn optional_date(value: &str, field: &str) -> Result<Option<Date>, EditError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    date(value, field).map(Some)
}

/// A whole number.
pub fn number(value: &str, field: &str) -> Result<i64, EditError> {
    value.trim().parse().map_err(|_| {
        bad(
            field,
            format!("{field}: `{value}` is not a whole number; write e.g. {field}=80"),
        )
    })
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Base58 public keys, comma-separated.
pub(crate) fn keys(value: &str, field: &str) -> Result<Vec<String>, EditError> {
    list(value)
        .iter()
        .map(|one| optional_key(one, field).map(|key| key.unwrap_or_default()))
        .collect()
}

/// A base58 public key, or none for an empty value.
pub(crate) fn optional_key(value: &str, field: &str) -> Result<Option<String>, EditError> {
    optional::<PublicKey>(value, field, "a public key (base58)")
}

/// A document id, or none for an empty value.
pub(crate) fn optional_document(value: &str, field: &str) -> Result<Option<String>, EditError> {
    optional::<DocumentId>(value, field, "a document id")
}

/// `value` read as a `T` (`what`, in the error) and written back as `T`
/// writes itself, or none for an empty value.
fn optional<T: std::str::FromStr + std::fmt::Display>(
    value: &str,
    field: &str,
    what: &str,
) -> Result<Option<String>, EditError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<T>()
        .map(|parsed| Some(parsed.to_string()))
        .map_err(|_| bad(field, format!("{field}: `{value}` is not {what}")))
}

/// `field.NAME=VALUE` on a record's custom fields; any other key is unknown.
pub(crate) fn custom_field(
    fields: &mut BTreeMap<String, String>,
    key: &str,
    value: &str,
    kind: Kind,
    known: &'static str,
) -> Result<(), EditError> {
    let Some(name) = key.strip_prefix("field.").filter(|name| !name.is_empty()) else {
        return Err(EditError::UnknownField {
            kind,
            key: key.to_owned(),
            known,
        });
    };
    if value.is_empty() {
        fields.remove(name);
    } else {
        fields.insert(name.to_owned(), value.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Stage, Status};

    #[test]
    fn names_are_chosen_from_the_known_ones() {
        assert_eq!(
            choose("In-Progress", Status::KNOWN, "status"),
            Ok(Status::InProgress)
        );
        let error = choose("wonn", Stage::KNOWN, "stage").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown stage `wonn`: use one of lead, prospect, proposal, won, lost, active, churned"
        );
    }

    #[test]
    fn dates_numbers_and_lists() {
        assert_eq!(optional_date(" ", "due"), Ok(None));
        assert!(
            optional_date("2025-02-30", "due")
                .unwrap_err()
                .to_string()
                .contains("exists")
        );
        let error = optional_date("31/03/2025", "--due")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--due:") && error.contains("YYYY-MM-DD"),
            "{error}"
        );
        assert_eq!(number(" 80", "score"), Ok(80));
        assert!(number("many", "score").is_err());
        assert_eq!(list(" a, ,b "), ["a", "b"]);
        assert!(keys("me", "assignees").is_err());
        assert!(required("  ", "title").is_err());
    }
}
