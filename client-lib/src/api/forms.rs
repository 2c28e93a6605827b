//! Intake forms, from the admin's side: define, list, show and close the
//! forms of a workspace (the relay's `/api/workspaces/{ws}/forms`), and
//! the public URL each form is served at.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, RelayApi};

/// What a form field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Several lines of text.
    Textarea,
    /// An email address; the first one links a submission's task to the
    /// customer with that address.
    Email,
    /// A decimal number.
    Number,
    /// One of the field's choices.
    Dropdown,
}

impl FieldType {
    /// Every type, as written.
    pub const NAMES: &'static str = "text, textarea, email, number or dropdown";
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
pub struct FormField {
    /// The key in submissions and in the task's custom fields.
    pub name: String,
    /// What the page shows; the relay makes one from the name if empty.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// A dropdown's choices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
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

/// A form to create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct NewForm {
    /// A short name: lowercase letters, digits, `-`, `_`. Tasks are tagged
    /// `form:NAME`.
    pub name: String,
    /// The page's heading; the relay makes one from the name if `None`.
    pub title: Option<String>,
    pub description: Option<String>,
    pub fields: Vec<FormField>,
    /// The field whose value becomes each task's title.
    pub title_field: Option<String>,
    /// More tags for each task, after `form:NAME`: `feedback` makes a
    /// satisfaction form's `csat` field count on the dashboard.
    pub tags: Vec<String>,
}

/// A form as the relay describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl RelayApi {
    /// Defines a form in `workspace` (admins).
    pub fn create_form(&self, workspace: &str, form: &NewForm) -> Result<FormInfo, ApiError> {
        let body = serde_json::to_value(form).map_err(|e| self.nonsense(e))?;
        let answer = self.call(
            "POST",
            &format!("/api/workspaces/{workspace}/forms"),
            Some(body),
        )?;
        self.form_from(answer)
    }

    /// The forms of `workspace`, oldest first, open and closed (admins).
    pub fn forms(&self, workspace: &str) -> Result<Vec<FormInfo>, ApiError> {
        let answer = self.call("GET", &format!("/api/workspaces/{workspace}/forms"), None)?;
        answer["forms"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|form| self.form_from(form.clone()))
            .collect()
    }

    /// One form by its id (admins).
    pub fn form(&self, workspace: &str, id: &str) -> Result<FormInfo, ApiError> {
        let answer = self.call(
            "GET",
            &format!("/api/workspaces/{workspace}/forms/{id}"),
            None,
        )?;
        self.form_from(answer)
    }

    /// Closes a form: its page says so and submissions are refused (410).
    pub fn close_form(&self, workspace: &str, id: &str) -> Result<FormInfo, ApiError> {
        let answer = self.call(
            "POST",
            &format!("/api/workspaces/{workspace}/forms/{id}/close"),
            None,
        )?;
        self.form_from(answer)
    }

    /// The form `wanted` names: its id, a unique prefix of it, or its name
    /// (the open form of that name, else the newest).
    pub fn find_form(&self, workspace: &str, wanted: &str) -> Result<FormInfo, ApiError> {
        let forms = self.forms(workspace)?;
        if let Some(form) = forms.iter().find(|f| f.id == wanted) {
            return Ok(form.clone());
        }
        let named: Vec<&FormInfo> = forms.iter().filter(|f| f.name == wanted).collect();
        if let Some(form) = named
            .iter()
            .find(|f| f.open)
            .or_else(|| named.last())
            .copied()
        {
            return Ok(form.clone());
        }
        let prefixed: Vec<&FormInfo> = forms
            .iter()
            .filter(|f| !wanted.is_empty() && f.id.starts_with(wanted))
            .collect();
        match prefixed.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ApiError::UnknownForm(format!(
                "no form `{wanted}` in this workspace; `rapport form list` shows them"
            ))),
            many => Err(ApiError::UnknownForm(format!(
                "`{wanted}` matches {} forms; type more of the id",
                many.len()
            ))),
        }
    }

    /// Where people fill in `form`: the relay's HTTP address and the
    /// form's path. Its definition as JSON is the same with `.json`.
    pub fn form_url(&self, form: &FormInfo) -> String {
        format!("{}{}", self.base, form.path)
    }

    fn form_from(&self, value: Value) -> Result<FormInfo, ApiError> {
        serde_json::from_value(value).map_err(|e| self.nonsense(e))
    }

    fn nonsense(&self, error: serde_json::Error) -> ApiError {
        ApiError::Unreachable {
            url: self.base.clone(),
            reason: format!("an answer that is not a form: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
