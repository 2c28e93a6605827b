//! A submission's body, read and checked against its form: parse, then
//! validate, before anything is written. Nothing here panics on any input.

use std::collections::BTreeMap;

use super::{FieldType, Form, MAX_LONG_TEXT, MAX_TEXT, shorten};

/// Why a body could not be read as field values (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("the body is not valid percent-encoding: {0}")]
    BadEncoding(String),
    #[error("the body is not JSON: {0}")]
    BadJson(String),
    #[error("send a JSON object of field names to values")]
    NotAnObject,
    #[error("field `{0}` must be a string or a number")]
    NotScalar(String),
    #[error("field `{0}` is given more than once")]
    Repeated(String),
}

/// Field values as received, in order.
pub type Received = Vec<(String, String)>;

/// What is wrong with a submission's fields, by field name (HTTP 422).
pub type FieldErrors = BTreeMap<String, String>;

/// A submission that passed its form's checks: every given value, trimmed,
/// by field name; empty optional fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub values: BTreeMap<String, String>,
}

/// Reads `application/x-www-form-urlencoded`.
pub fn parse_urlencoded(body: &[u8]) -> Result<Received, BodyError> {
    let mut out: Received = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = percent_decode(name)?;
        let value = percent_decode(value)?;
        push_once(&mut out, name, value)?;
    }
    Ok(out)
}

/// Reads a JSON object whose values are strings, numbers or null (absent).
pub fn parse_json(body: &[u8]) -> Result<Received, BodyError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| BodyError::BadJson(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(BodyError::NotAnObject);
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Null => continue,
            _ => return Err(BodyError::NotScalar(shorten(&name))),
        };
        out.push((name, text));
    }
    Ok(out)
}

fn push_once(out: &mut Received, name: String, value: String) -> Result<(), BodyError> {
    if out.iter().any(|(n, _)| *n == name) {
        return Err(BodyError::Repeated(shorten(&name)));
    }
    out.push((name, value));
    Ok(())
}

/// `+` is a space, `%XX` a byte; the bytes must be UTF-8.
fn percent_decode(bytes: &[u8]) -> Result<String, BodyError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        BodyError::BadEncoding(format!(
                            "`%` at byte {i} is not followed by two hex digits"
                        ))
                    })?;
                out.push(hex);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BodyError::NotUtf8)
}

/// Checks received values against `form`: every field known and given
/// once, required ones present, each value of its field's type.
pub fn check(form: &Form, received: Received) -> Result<Checked, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut values = BTreeMap::new();
    for (name, value) in received {
        let Some(field) = form.field(&name) else {
            errors.insert(shorten(&name), "is not a field of this form".into());
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match check_value(field.kind, &field.choices, value) {
            Ok(()) => {
                values.insert(name, value.to_owned());
            }
            Err(problem) => {
                errors.insert(name, problem);
            }
        }
    }
    for field in &form.fields {
        if field.required && !values.contains_key(&field.name) && !errors.contains_key(&field.name)
        {
            errors.insert(field.name.clone(), "is required".into());
        }
    }
    if errors.is_empty() {
        Ok(Checked { values })
    } else {
        Err(errors)
    }
}

fn check_value(kind: FieldType, choices: &[String], value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    match kind {
        FieldType::Text => {
            if chars > MAX_TEXT {
                return Err(format!("is longer than {MAX_TEXT} characters"));
            }
            if value.chars().any(char::is_control) {
                return Err("must be one line of text".into());
            }
        }
        FieldType::Textarea => {
            if chars > MAX_LONG_TEXT {
                return Err(format!("is longer than {MAX_LONG_TEXT} characters"));
            }
            if value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Err("holds control characters".into());
            }
        }
        FieldType::Email => {
            if !is_email(value) {
                return Err("is not an email address (name@example.com)".into());
            }
        }
        FieldType::Number => {
            let ok = chars <= 40 && value.parse::<f64>().is_ok_and(f64::is_finite);
            if !ok {
                return Err("is not a number".into());
            }
        }
        FieldType::Dropdown => {
            if !choices.iter().any(|c| c == value) {
                return Err(format!("must be one of: {}", choices.join(", ")));
            }
        }
    }
    Ok(())
}

/// A plausible address: `local@domain.tld`, no spaces, at most 254 bytes.
pub fn is_email(text: &str) -> bool {
    if text.len() > 254 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::super::FormField as Field;
    use super::*;

    fn form() -> Form {
        let field = |name: &str, kind, required, choices: &[&str]| Field {
            name: name.into(),
            label: name.into(),
            kind,
            required,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        };
        Form {
            id: "form-x".into(),
            workspace: "ws-x".into(),
            name: "support".into(),
            title: "Support".into(),
            description: String::new(),
            fields: vec![
                field("name", FieldType::Text, true, &[]),
                field("email", FieldType::Email, true, &[]),
                field("seats", FieldType::Number, false, &[]),
                field("plan", FieldType::Dropdown, false, &["Basic", "Pro"]),
                field("problem", FieldType::Textarea, false, &[]),
            ],
            title_field: None,
            tags: Vec::new(),
            created_by: rapport_protocol::ids::PublicKey::from_bytes([1; 32]),
            created_at: 0,
            closed_at: None,
            submissions: 0,
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Received {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn urlencoded_bodies_decode() {
        assert_eq!(
            parse_urlencoded(b"name=Ann+Lee&email=ann%40acme.test&empty=&flag").unwrap(),
            pairs(&[
                ("name", "Ann Lee"),
                ("email", "ann@acme.test"),
                ("empty", ""),
                ("flag", "")
            ])
        );
        assert_eq!(
            parse_urlencoded("problem=caf%C3%A9".as_bytes()).unwrap(),
            pairs(&[("problem", "café")])
        );
        assert!(matches!(
            parse_urlencoded(b"a=%4"),
            Err(BodyError::BadEncoding(_))
        ));
        assert!(matches!(
            parse_urlencoded(b"a=%zz"),
            Err(BodyError::BadEncoding(_))
        ));
        assert_eq!(parse_urlencoded(b"a=%ff"), Err(BodyError::NotUtf8));
        assert!(matches!(
            parse_urlencoded(b"a=1&a=2"),
            Err(BodyError::Repeated(_))
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    [b'%', b'=', b'&', b'+', b'a', b'F', b'9', (seed >> 24) as u8]
                        [(seed % 8) as usize]
                })
                .collect();
            let _ = parse_urlencoded(&bytes);
            let _ = parse_json(&bytes);
        }
    }

    #[test]
    fn json_bodies_take_strings_and_numbers() {
        assert_eq!(
            parse_json(br#"{"name":"Ann","seats":3,"plan":null}"#).unwrap(),
            pairs(&[("name", "Ann"), ("seats", "3")])
        );
        assert_eq!(parse_json(b"[1]"), Err(BodyError::NotAnObject));
        assert!(matches!(
            parse_json(br#"{"a":{"b":1}}"#),
            Err(BodyError::NotScalar(_))
        ));
        assert!(matches!(parse_json(b"{"), Err(BodyError::BadJson(_))));
    }

    #[test]
    fn a_good_submission_is_trimmed_and_drops_empty_fields() {
        let checked = check(
            &form(),
            pairs(&[
                ("name", " Ann "),
                ("email", "ann@acme.test"),
                ("seats", "2.5"),
                ("plan", ""),
            ]),
        )
        .unwrap();
        assert_eq!(
            checked.values.into_iter().collect::<Vec<_>>(),
            pairs(&[
                ("email", "ann@acme.test"),
                ("name", "Ann"),
                ("seats", "2.5")
            ])
        );
    }

    #[test]
    fn each_bad_field_is_named_with_its_problem() {
        let errors = check(
            &form(),
            pairs(&[
                ("email", "not-an-address"),
                ("seats", "many"),
                ("plan", "Gold"),
                ("problem", "a\u{0}b"),
                ("color", "red"),
            ]),
        )
        .unwrap_err();
        let problems: Vec<(&str, &str)> = errors
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            problems,
            [
                ("color", "is not a field of this form"),
                ("email", "is not an email address (name@example.com)"),
                ("name", "is required"),
                ("plan", "must be one of: Basic, Pro"),
                ("problem", "holds control characters"),
                ("seats", "is not a number"),
            ]
        );
        assert!(
            check(
                &form(),
                pairs(&[("name", "A"), ("email", "a@b.c"), ("seats", "NaN")])
            )
            .is_err()
        );
        assert!(check(&form(), pairs(&[("name", "A\nB"), ("email", "a@b.c")])).is_err());
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "ann.lee+x@mail.acme.test"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a@@b.co", "a b@c.de", "a@.b", "a@b..c", "a@b.c.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
