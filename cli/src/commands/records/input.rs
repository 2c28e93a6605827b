//! Reading what people type: `KEY=VALUE` pairs, people (`me` or a key),
//! dates, and the names of stages, statuses and priorities.
//!
//! Every error is one line that names the problem and shows the fix.

use std::fmt::Display;

use anyhow::{Result, anyhow, bail};
use rapport_model::Date;
use rapport_model::record::edit;
use rapport_protocol::ids::PublicKey;

/// Splits `KEY=VALUE`; `example` shows a well-formed pair in the error.
pub(super) fn pair<'a>(text: &'a str, example: &str) -> Result<(&'a str, &'a str)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        Some(_) => bail!("`{text}` has no name before `=`: write it as {example}"),
        None => bail!("`{text}` is not KEY=VALUE (no `=`): write it as {example}"),
    }
}

/// Custom fields from `--field NAME=VALUE` arguments.
pub(super) fn custom_fields(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|text| {
            let (key, value) = pair(text, "--field product=hosting")?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A person: `me` (this replica's key) or a base58 public key.
pub(super) fn person(text: &str, me: &PublicKey) -> Result<String> {
    if text == "me" {
        return Ok(me.to_string());
    }
    text.parse::<PublicKey>().map(|key| key.to_string()).map_err(|_| {
        anyhow!("`{text}` is not a public key: give a base58 key (`rapport whoami` shows yours) or `me`")
    })
}

/// People from a comma-separated list (`me,7Xk…`); empty gives none.
pub(super) fn people(text: &str, me: &PublicKey) -> Result<Vec<String>> {
    list(text).iter().map(|one| person(one, me)).collect()
}

/// The items of a comma-separated list, trimmed, empty ones dropped.
pub(super) fn list(text: &str) -> Vec<String> {
    edit::list(text)
}

/// A date `YYYY-MM-DD`; `what` names the argument in the error.
pub(super) fn date(text: &str, what: &str) -> Result<Date> {
    Ok(edit::date(text, what)?)
}

/// A whole number; `what` names the argument in the error.
pub(super) fn number(text: &str, what: &str) -> Result<i64> {
    Ok(edit::number(text, what)?)
}

/// One of the `known` values of an enum, by name, as the model reads it
/// ([`edit::choose`]): a typo never becomes a new stage.
pub(super) fn choose<T: Clone + Display>(text: &str, known: &[T], what: &str) -> Result<T> {
    Ok(edit::choose(text, known, what)?)
}

/// Text that must not be empty.
pub(super) fn required(text: &str, what: &str) -> Result<String> {
    Ok(edit::required(text, what)?)
}

/// `YYYY-MM-DD HH:MM` (UTC) for unix milliseconds.
pub(super) fn timestamp(millis: i64) -> String {
    let minutes = millis.div_euclid(60_000);
    let (days, minute_of_day) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
    match Date::from_days_since_epoch(days) {
        Some(date) => format!("{date} {:02}:{:02}", minute_of_day / 60, minute_of_day % 60),
        None => format!("@{millis}"),
    }
}

#[cfg(test)]
mod tests {
    use rapport_model::{Priority, Stage, Status};

    use super::*;

    #[test]
    fn pairs_need_an_equals_sign_and_a_name() {
        assert_eq!(pair("stage=won", "x").unwrap(), ("stage", "won"));
        assert_eq!(pair("note=a=b", "x").unwrap(), ("note", "a=b"));
        assert_eq!(pair("email=", "x").unwrap(), ("email", ""));
        let error = pair("stage", "stage=won").unwrap_err().to_string();
        assert!(
            error.contains("no `=`") && error.contains("stage=won"),
            "{error}"
        );
        assert!(pair("=won", "stage=won").is_err());
        assert!(!error.contains('\n'));
    }

    #[test]
    fn people_are_me_or_keys() {
        let me = PublicKey::from_bytes([9; 32]);
        assert_eq!(person("me", &me).unwrap(), me.to_string());
        let other = PublicKey::from_bytes([4; 32]).to_string();
        assert_eq!(person(&other, &me).unwrap(), other);
        let error = person("bob", &me).unwrap_err().to_string();
        assert!(
            error.contains("`bob` is not a public key") && error.contains("me"),
            "{error}"
        );
        assert_eq!(
            people(&format!("me, {other},"), &me).unwrap(),
            [me.to_string(), other]
        );
    }

    #[test]
    fn dates_are_iso_and_errors_say_how() {
        assert_eq!(
            date("2024-02-29", "--due").unwrap().to_string(),
            "2024-02-29"
        );
        let error = date("31/03/2025", "--due").unwrap_err().to_string();
        assert!(
            error.starts_with("--due:") && error.contains("YYYY-MM-DD"),
            "{error}"
        );
        assert!(date("2023-02-29", "due").is_err());
    }

    #[test]
    fn names_are_chosen_from_the_known_ones() {
        assert_eq!(choose("Won", Stage::KNOWN, "stage").unwrap(), Stage::Won);
        assert_eq!(
            choose("in-progress", Status::KNOWN, "status").unwrap(),
            Status::InProgress
        );
        let error = choose("asap", Priority::KNOWN, "priority")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "unknown priority `asap`: use one of low, normal, high, urgent"
        );
    }

    #[test]
    fn timestamps_and_today_read_the_clock_in_utc() {
        // Day numbers themselves are tested with `Date`.
        assert_eq!(timestamp(86_400_000 + 3_720_000), "1970-01-02 01:02");
        assert!(crate::context::today().unwrap() > "2024-01-01".parse().unwrap());
    }
}
