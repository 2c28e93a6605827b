//! A form's definition: its fields and their types, as an admin sends it
//! and as the relay stores it (JSON in the `forms` table).

use rapport_protocol::ids::PublicKey;
use serde::{Deserialize, Serialize};

/// Field names the relay writes itself into a task's custom fields.
pub(crate) const RESERVED: [&str; 2] = ["form", "submitted_at"];

pub(crate) const MAX_FIELDS: usize = 40;
pub(crate) const MAX_CHOICES: usize = 100;
/// The longest value accepted in a text field.
pub(crate) const MAX_TEXT: usize = 2_000;
/// The longest value accepted in a long text field.
pub(crate) const MAX_LONG_TEXT: usize = 20_000;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FieldType {
    /// One line of text.
    Text,
    /// Several lines of text (a problem description, say).
    Textarea,
    /// An email address; the first email field links the task to the
    /// customer with that address.
    Email,
    /// A decimal number.
    Number,
    /// One of the field's `choices`.
    Dropdown,
}

impl FieldType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Textarea => "textarea",
            Self::Email => "email",
            Self::Number => "number",
            Self::Dropdown => "dropdown",
        }
    }
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Field {
    /// The key in submissions and in the task's custom fields: lowercase
    /// letters, digits, `_` and `-`.
    pub(crate) name: String,
    /// What the page shows; the name, made readable, when not given.
    #[serde(default)]
    pub(crate) label: String,
    #[serde(rename = "type", default = "text")]
    pub(crate) kind: FieldType,
    #[serde(default)]
    pub(crate) required: bool,
    /// A dropdown's choices, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) choices: Vec<String>,
}

fn text() -> FieldType {
    FieldType::Text
}

/// An intake form of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Form {
    /// `form-` and 12 random bytes in base58: the public URL is
    /// `/forms/{id}`, so the id must not be guessable.
    pub(crate) id: String,
    pub(crate) workspace: String,
    /// A short name (lowercase, digits, `-`, `_`): tasks are tagged
    /// `form:{name}`.
    pub(crate) name: String,
    /// The heading of the page, and the start of task titles.
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) fields: Vec<Field>,
    /// The field whose value becomes the task's title.
    #[serde(default)]
    pub(crate) title_field: Option<String>,
    /// More tags for each task, after `form:{name}` (`feedback`, say, so
    /// that the dashboard counts a satisfaction form's `csat` field).
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    pub(crate) created_by: PublicKey,
    pub(crate) created_at: u64,
    #[serde(default)]
    pub(crate) closed_at: Option<u64>,
    #[serde(default)]
    pub(crate) submissions: u64,
}

impl Form {
    pub(crate) fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    pub(crate) fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field whose value links the task to a customer.
    pub(crate) fn email_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.kind == FieldType::Email)
    }

    /// The form as its public JSON endpoint shows it.
    pub(crate) fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "open": self.is_open(),
            "fields": self.fields,
            "submit": format!("/forms/{}", self.id),
            "accepts": ["application/x-www-form-urlencoded", "application/json"],
        })
    }

    /// The form as the admin API shows it.
    pub(crate) fn admin_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("open".into(), self.is_open().into());
            map.insert("path".into(), format!("/forms/{}", self.id).into());
        }
        value
    }
}

/// A form as an admin defines it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NewForm {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) fields: Vec<Field>,
    #[serde(default)]
    pub(crate) title_field: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

impl NewForm {
    /// Checks the definition and fills in defaults: labels from names,
    /// the title from the name.
    pub(crate) fn check(mut self) -> Result<Self, String> {
        self.name = self.name.trim().to_owned();
        if !is_slug(&self.name) {
            return Err(format!(
                "a form name is 1 to 40 lowercase letters, digits, `-` or `_` (it becomes the tag form:NAME); got `{}`",
                shorten(&self.name)
            ));
        }
        let title = self.title.take().unwrap_or_default().trim().to_owned();
        self.title = Some(if title.is_empty() {
            readable(&self.name)
        } else {
            title
        });
        if self.title.as_ref().is_some_and(|t| t.chars().count() > 120) {
            return Err("a form title is at most 120 characters".into());
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2_000)
        {
            return Err("a form description is at most 2000 characters".into());
        }
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            return Err(format!("a form has 1 to {MAX_FIELDS} fields"));
        }
        for i in 0..self.fields.len() {
            check_field(&mut self.fields[i])?;
            let name = &self.fields[i].name;
            if self.fields[..i].iter().any(|f| &f.name == name) {
                return Err(format!("two fields are called `{name}`"));
            }
        }
        self.tags = check_tags(std::mem::take(&mut self.tags))?;
        if let Some(title_field) = &self.title_field
            && !self.fields.iter().any(|f| &f.name == title_field)
        {
            return Err(format!(
                "title_field `{}` is not one of the form's fields",
                shorten(title_field)
            ));
        }
        Ok(self)
    }
}

fn check_field(field: &mut Field) -> Result<(), String> {
    field.name = field.name.trim().to_owned();
    if !is_slug(&field.name) {
        return Err(format!(
            "a field name is 1 to 40 lowercase letters, digits, `-` or `_`; got `{}`",
            shorten(&field.name)
        ));
    }
    if RESERVED.contains(&field.name.as_str()) {
        return Err(format!(
            "`{}` is kept for the relay's own use in tasks; call the field something else",
            field.name
        ));
    }
    field.label = field.label.trim().to_owned();
    if field.label.is_empty() {
        field.label = readable(&field.name);
    }
    if field.label.chars().count() > 200 {
        return Err(format!(
            "the label of `{}` is longer than 200 characters",
            field.name
        ));
    }
    match field.kind {
        FieldType::Dropdown => {
            field.choices = field.choices.iter().map(|c| c.trim().to_owned()).collect();
            if field.choices.is_empty() || field.choices.len() > MAX_CHOICES {
                return Err(format!(
                    "dropdown `{}` needs 1 to {MAX_CHOICES} choices",
                    field.name
                ));
            }
            for (i, choice) in field.choices.iter().enumerate() {
                if choice.is_empty() || choice.chars().count() > 200 {
                    return Err(format!(
                        "a choice of `{}` is empty or longer than 200 characters",
                        field.name
                    ));
                }
                if field.choices[..i].contains(choice) {
                    return Err(format!("dropdown `{}` lists `{choice}` twice", field.name));
                }
            }
        }
        _ if !field.choices.is_empty() => {
            return Err(format!(
                "only a dropdown has choices; `{}` is {}",
                field.name,
                field.kind.as_str()
            ));
        }
        _ => {}
    }
    Ok(())
}

/// At most 10 tags of 1 to 40 characters, no spaces; repeats dropped.
fn check_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim().to_owned();
        let fine = (1..=40).contains(&tag.chars().count())
            && !tag.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fine {
            return Err(format!(
                "a tag is 1 to 40 characters without spaces; got `{}`",
                shorten(&tag)
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > 10 {
        return Err("a form adds at most 10 tags".into());
    }
    Ok(out)
}

/// 1 to 40 of `a-z`, `0-9`, `-`, `_`.
pub(crate) fn is_slug(text: &str) -> bool {
    (1..=40).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `product_used` → `Product used`.
fn readable(name: &str) -> String {
    let spaced = name.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// At most 60 characters of `text`, for error messages.
pub(crate) fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldType, choices: &[&str]) -> Field {
        Field {
            name: name.into(),
            label: String::new(),
            kind,
            required: false,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn form(fields: Vec<Field>) -> NewForm {
        NewForm {
            name: "support".into(),
            title: None,
            description: None,
            fields,
            title_field: None,
            tags: Vec::new(),
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let checked = form(vec![field("product_used", FieldType::Text, &[])])
            .check()
            .unwrap();
        assert_eq!(checked.title.as_deref(), Some("Support"));
        assert_eq!(checked.fields[0].label, "Product used");
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        let cases: Vec<(NewForm, &str)> = vec![
            (form(vec![]), "1 to"),
            (
                NewForm {
                    name: "Support Form".into(),
                    ..form(vec![field("a", FieldType::Text, &[])])
                },
                "form name",
            ),
            (
                form(vec![field("Bad Name", FieldType::Text, &[])]),
                "field name",
            ),
            (form(vec![field("form", FieldType::Text, &[])]), "kept"),
            (form(vec![field("p", FieldType::Dropdown, &[])]), "choices"),
            (
                form(vec![field("p", FieldType::Dropdown, &["a", "a"])]),
                "twice",
            ),
            (
                form(vec![field("p", FieldType::Text, &["a"])]),
                "only a dropdown",
            ),
            (
                form(vec![
                    field("a", FieldType::Text, &[]),
                    field("a", FieldType::Email, &[]),
                ]),
                "two fields",
            ),
            (
                NewForm {
                    title_field: Some("nope".into()),
                    ..form(vec![field("a", FieldType::Text, &[])])
                },
                "title_field",
            ),
            (
                NewForm {
                    tags: vec!["two words".into()],
                    ..form(vec![field("a", FieldType::Text, &[])])
                },
                "tag",
            ),
        ];
        for (definition, expected) in cases {
            let err = definition.check().unwrap_err();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }

    #[test]
    fn field_types_read_from_json() {
        let field: Field =
            serde_json::from_str(r#"{"name":"p","type":"dropdown","choices":["a"]}"#).unwrap();
        assert_eq!(field.kind, FieldType::Dropdown);
        let field: Field = serde_json::from_str(r#"{"name":"p"}"#).unwrap();
        assert_eq!(field.kind, FieldType::Text);
        assert!(serde_json::from_str::<Field>(r#"{"name":"p","type":"date"}"#).is_err());
    }
}
