//! The admin side of forms, under `/api/workspaces/{ws}/forms`: create,
//! list, show and close. Authenticated like the rest of the workspace API;
//! admins and owners only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rapport_model::form::{Form, FormInfo, NewForm};
use serde_json::{Value, json};
use tracing::info;

use crate::relay::{lock, now};
use crate::state::AppState;
use crate::workspace::{ApiError, AuditEvent, Role, WorkspaceError, caller, event, require};

type Answer<T = FormInfo> = Result<Json<T>, ApiError>;

pub(crate) async fn create(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: Result<Json<NewForm>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "create a form")?;
    let Json(body) = body.map_err(|e| WorkspaceError::Invalid(e.body_text()))?;
    let new = body.check().map_err(WorkspaceError::Invalid)?;
    let form = Form {
        id: format!(
            "form-{}",
            bs58::encode(rand::random::<[u8; 12]>()).into_string()
        ),
        workspace: ws.clone(),
        name: new.name,
        title: new.title.unwrap_or_default(),
        description: new.description.unwrap_or_default().trim().to_owned(),
        fields: new.fields,
        title_field: new.title_field,
        tags: new.tags,
        created_by: key,
        created_at: now().0,
        closed_at: None,
        submissions: 0,
    };
    let mut forms = lock(&s.forms.by_id);
    if let Some(same) = forms
        .values()
        .find(|f| f.workspace == ws && f.name == form.name && f.is_open())
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "an open form is already called `{}` ({}); close it first or choose another name",
                form.name, same.id
            ),
        ));
    }
    let mut created = event("form-created", key);
    created.detail = format!("form {} ({})", form.name, form.id);
    save(&s, &form, created)?;
    info!(workspace = %ws, form = %form.id, name = %form.name, "form created");
    let answer = form.info();
    forms.insert(form.id.clone(), form);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> Answer<Value> {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "list forms")?;
    let forms = lock(&s.forms.by_id);
    let mut list: Vec<&Form> = forms.values().filter(|f| f.workspace == ws).collect();
    list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let list: Vec<FormInfo> = list.into_iter().map(Form::info).collect();
    Ok(Json(json!({ "forms": list })))
}

pub(crate) async fn show(
    State(s): State<AppState>,
    Path((ws, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "read a form")?;
    let form = in_workspace(&s, &ws, &id)?;
    Ok(Json(form.info()))
}

/// Reads (and ignores) any body, so that the connection stays reusable.
pub(crate) async fn close(
    State(s): State<AppState>,
    Path((ws, id)): Path<(String, String)>,
    headers: HeaderMap,
    _body: axum::body::Bytes,
) -> Answer {
    let key = caller(&s.relay, &headers)?;
    require(&s.relay, &ws, key, Role::Admin, "close a form")?;
    let mut forms = lock(&s.forms.by_id);
    let mut form = forms
        .get(&id)
        .filter(|f| f.workspace == ws)
        .cloned()
        .ok_or_else(unknown)?;
    if form.is_open() {
        form.closed_at = Some(now().0);
        let mut closed = event("form-closed", key);
        closed.detail = format!("form {} ({})", form.name, form.id);
        save(&s, &form, closed)?;
        info!(workspace = %ws, form = %form.id, "form closed");
        forms.insert(form.id.clone(), form.clone());
    }
    Ok(Json(form.info()))
}

fn in_workspace(s: &AppState, ws: &str, id: &str) -> Result<Form, ApiError> {
    s.forms
        .get(id)
        .filter(|f| f.workspace == ws)
        .ok_or_else(unknown)
}

fn unknown() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such form in this workspace".into(),
    )
}

/// Stores the form with its audit event, in one transaction.
fn save(s: &AppState, form: &Form, event: AuditEvent) -> Result<(), ApiError> {
    // In a cluster, every relay's first: a form the cluster does not have
    // is not made here either.
    if let Some(control) = s.relay.control.get() {
        let row = serde_json::to_value(form).map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
        let audit = serde_json::to_value(&event)
            .map(|e| vec![e])
            .unwrap_or_default();
        control.put_form(&form.id, &form.workspace, row, audit)?;
    }
    let json = serde_json::to_vec(form).map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
    let events = vec![serde_json::to_vec(&event).unwrap_or_default()];
    s.relay
        .store()
        .save_form(&form.id, &json, &form.workspace, &events)
        .map_err(|e| ApiError::from(WorkspaceError::Storage(e)))
}
