//! Intake forms: a form's definition as an admin sends it ([`NewForm`]),
//! as the relay stores it ([`Form`]) and shows it ([`FormInfo`],
//! [`PublicForm`]); a submission's values checked against it
//! ([`submission`]); and the task a submission becomes ([`task`]).

use std::str::FromStr;

use rapport_protocol::ids::PublicKey;
use serde::{Deserialize, Serialize};

pub mod submission;
pub mod task;

/// FormField names the relay writes itself into a task's custom fields.
pub const RESERVED: [&str; 2] = ["form", "submitted_at"];

pub const MAX_FIELDS: usize = 40;
pub const MAX_CHOICES: usize = 100;
/// The longest value accepted in a text field.
pub const MAX_TEXT: usize = 2_000;
/// The longest value accepted in a long text field.
pub const MAX_LONG_TEXT: usize = 20_000;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
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
    /// Every type, as written.
    pub const NAMES: &'static str = "text, textarea, email, number or dropdown";

    /// The type as written in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Textarea => "textarea",
            Self::Email => "email",
            Self::Number => "number",
            Self::Dropdown => "dropdown",
        }
    }
}

impl FromStr for FieldType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "text" => Self::Text,
            "textarea" => Self::Textarea,
            "email" => Self::Email,
            "number" => Self::Number,
            "dropdown" => Self::Dropdown,
            other => {
                return Err(format!(
                    "`{other}` is not a field type; use {}",
                    Self::NAMES
                ));
            }
        })
    }
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct FormField {
    /// The key in submissions and in the task's custom fields: lowercase
    /// letters, digits, `_` and `-`.
    pub name: String,
    /// What the page shows; the name, made readable, when not given.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type", default = "text")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// A dropdown's choices, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

fn text() -> FieldType {
    FieldType::Text
}

impl FromStr for FormField {
    type Err = String;

    /// `NAME[?][:TYPE[:CHOICE,CHOICE…]]`: required unless the name ends in
    /// `?`; text unless a type is given; a dropdown lists its choices.
    /// `email:email`, `phone?`, `plan:dropdown:Basic,Pro`.
    fn from_str(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default().trim();
        let (name, required) = match name.strip_suffix('?') {
            Some(name) => (name, false),
            None => (name, true),
        };
        if name.is_empty() {
            return Err(format!(
                "`{spec}`: a field is NAME[?][:TYPE[:CHOICE,CHOICE…]], e.g. email:email or plan?:dropdown:Basic,Pro"
            ));
        }
        let kind = match parts.next() {
            Some(kind) => kind.trim().parse()?,
            None => FieldType::Text,
        };
        let choices: Vec<String> = parts
            .next()
            .map(|c| c.split(',').map(|c| c.trim().to_owned()).collect())
            .unwrap_or_default();
        if kind == FieldType::Dropdown && choices.is_empty() {
            return Err(format!(
                "`{spec}`: a dropdown lists its choices, e.g. {name}:dropdown:Basic,Pro"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            label: String::new(),
            kind,
            required,
            choices,
        })
    }
}

/// An intake form of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Form {
    /// `form-` and 12 random bytes in base58: the public URL is
    /// `/forms/{id}`, so the id must not be guessable.
    pub id: String,
    pub workspace: String,
    /// A short name (lowercase, digits, `-`, `_`): tasks are tagged
    /// `form:{name}`.
    pub name: String,
    /// The heading of the page, and the start of task titles.
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub fields: Vec<FormField>,
    /// The field whose value becomes the task's title.
    #[serde(default)]
    pub title_field: Option<String>,
    /// More tags for each task, after `form:{name}` (`feedback`, say, so
    /// that the dashboard counts a satisfaction form's `csat` field).
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_by: PublicKey,
    pub created_at: u64,
    #[serde(default)]
    pub closed_at: Option<u64>,
    #[serde(default)]
    pub submissions: u64,
}

impl Form {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    pub fn field(&self, name: &str) -> Option<&FormField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field whose value links the task to a customer.
    pub fn email_field(&self) -> Option<&FormField> {
        self.fields.iter().find(|f| f.kind == FieldType::Email)
    }

    /// The form as its public JSON endpoint shows it.
    pub fn public(&self) -> PublicForm {
        PublicForm {
            id: self.id.clone(),
            name: self.name.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            open: self.is_open(),
            fields: self.fields.clone(),
            submit: self.path(),
            accepts: vec![
                "application/x-www-form-urlencoded".into(),
                "application/json".into(),
            ],
        }
    }

    /// The form as the admin API shows it.
    pub fn info(&self) -> FormInfo {
        FormInfo {
            id: self.id.clone(),
            workspace: self.workspace.clone(),
            name: self.name.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            fields: self.fields.clone(),
            title_field: self.title_field.clone(),
            tags: self.tags.clone(),
            created_by: self.created_by.to_string(),
            created_at: self.created_at,
            closed_at: self.closed_at,
            submissions: self.submissions,
            open: self.is_open(),
            path: self.path(),
        }
    }

    /// The page's path on the relay.
    pub fn path(&self) -> String {
        format!("/forms/{}", self.id)
    }
}

/// A form as the admin API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct FormInfo {
    pub id: String,
    pub workspace: String,
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub fields: Vec<FormField>,
    #[serde(default)]
    pub title_field: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The admin who defined it, base58.
    pub created_by: String,
    pub created_at: u64,
    #[serde(default)]
    pub closed_at: Option<u64>,
    #[serde(default)]
    pub submissions: u64,
    pub open: bool,
    /// The page's path on the relay, `/forms/{id}`.
    pub path: String,
}

/// A form as anyone may read it, at `/forms/{id}.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicForm {
    pub id: String,
    pub name: String,
    pub title: String,
    pub description: String,
    pub open: bool,
    pub fields: Vec<FormField>,
    /// Where submissions go.
    pub submit: String,
    /// The body types a submission may have.
    pub accepts: Vec<String>,
}

/// A form as an admin defines it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NewForm {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub fields: Vec<FormField>,
    #[serde(default)]
    pub title_field: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl NewForm {
    /// Checks the definition and fills in defaults: labels from names,
    /// the title from the name.
    pub fn check(mut self) -> Result<Self, String> {
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

fn check_field(field: &mut FormField) -> Result<(), String> {
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
pub fn is_slug(text: &str) -> bool {
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
pub fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldType, choices: &[&str]) -> FormField {
        FormField {
            name: name.into(),
            label: String::new(),
            kind,
            required: false,
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn form(fields: Vec<FormField>) -> NewForm {
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
    fn field_specs_parse() {
        let field: FormField = "email:email".parse().unwrap();
        assert_eq!(
            (field.name.as_str(), field.kind, field.required),
            ("email", FieldType::Email, true)
        );
        let field: FormField = "phone?".parse().unwrap();
        assert_eq!(
            (field.name.as_str(), field.kind, field.required),
            ("phone", FieldType::Text, false)
        );
        let field: FormField = "plan?:dropdown:Basic, Pro".parse().unwrap();
        assert_eq!(field.choices, ["Basic", "Pro"]);
        assert!(!field.required);
        for bad in ["", "?", "x:date", "plan:dropdown"] {
            assert!(bad.parse::<FormField>().is_err(), "{bad}");
        }
    }

    #[test]
    fn field_types_read_from_json() {
        let field: FormField =
            serde_json::from_str(r#"{"name":"p","type":"dropdown","choices":["a"]}"#).unwrap();
        assert_eq!(field.kind, FieldType::Dropdown);
        let field: FormField = serde_json::from_str(r#"{"name":"p"}"#).unwrap();
        assert_eq!(field.kind, FieldType::Text);
        assert!(serde_json::from_str::<FormField>(r#"{"name":"p","type":"date"}"#).is_err());
    }
}
