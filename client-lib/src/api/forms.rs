//! Intake forms, from the admin's side: define, list, show and close the
//! forms of a workspace (the relay's `/api/workspaces/{ws}/forms`), and
//! the public URL each form is served at.

use rapport_model::form::{FormInfo, NewForm};
use serde::Deserialize;

use super::{ApiError, Method, RelayApi};

/// `GET /api/workspaces/{ws}/forms`.
#[derive(Deserialize)]
struct FormList {
    forms: Vec<FormInfo>,
}

impl RelayApi {
    /// Defines a form in `workspace` (admins).
    pub fn create_form(&self, workspace: &str, form: &NewForm) -> Result<FormInfo, ApiError> {
        self.post(&format!("/api/workspaces/{workspace}/forms"), form)
    }

    /// The forms of `workspace`, oldest first, open and closed (admins).
    pub fn forms(&self, workspace: &str) -> Result<Vec<FormInfo>, ApiError> {
        let list: FormList = self.get(&format!("/api/workspaces/{workspace}/forms"))?;
        Ok(list.forms)
    }

    /// One form by its id (admins).
    pub fn form(&self, workspace: &str, id: &str) -> Result<FormInfo, ApiError> {
        self.get(&format!("/api/workspaces/{workspace}/forms/{id}"))
    }

    /// Closes a form: its page says so and submissions are refused (410).
    pub fn close_form(&self, workspace: &str, id: &str) -> Result<FormInfo, ApiError> {
        self.call(
            Method::Post,
            &format!("/api/workspaces/{workspace}/forms/{id}/close"),
            None::<&()>,
        )
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
        format!("{}{}", self.relay.http_base(), form.path)
    }
}
