//! `POST /api/workspaces/{ws}/documents/remove`: admins delete documents
//! for good, or erase a person's data (see `relay::removal`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use rapport_model::api::{DocumentsRemoved, RemoveDocuments};

use super::Role;
use super::call::{ApiResult, caller, require};
use crate::relay::Removal;
use crate::state::AppState;

/// Most documents one call removes: a record with its linked documents is
/// a handful; a longer list is split by the client.
const MAX_PER_CALL: usize = 1_000;

pub(crate) async fn remove_documents(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RemoveDocuments>,
) -> ApiResult<DocumentsRemoved> {
    let key = caller(&s.relay, &headers)?;
    let what = if body.erase {
        "erase documents"
    } else {
        "delete documents"
    };
    require(&s.relay, &ws, key, Role::Admin, what)?;
    if body.documents.is_empty() || body.documents.len() > MAX_PER_CALL {
        return Err(super::WorkspaceError::Invalid(format!(
            "name 1 to {MAX_PER_CALL} documents to remove"
        ))
        .into());
    }
    let removal = if body.erase {
        Removal::Erase
    } else {
        Removal::Delete
    };
    let removed = s
        .relay
        .remove_documents(&ws, key, &body.documents, removal)
        .await?;
    Ok(Json(DocumentsRemoved { removed }))
}
