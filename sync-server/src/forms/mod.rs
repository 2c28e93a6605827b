//! Intake forms: an admin defines a form in a workspace; the relay serves
//! it to anyone at `/forms/{id}` (a plain HTML form, no JavaScript) and
//! `/forms/{id}.json`, and turns each valid submission into a task document
//! of the workspace.
//!
//! # Endpoints
//!
//! Admin (token, admin or owner of the workspace), JSON:
//!
//! - `POST /api/workspaces/{ws}/forms` `{name, title?, description?,
//!   fields: [{name, label?, type, required?, choices?}], title_field?}`
//!   → 201 and the form; `type` is `text`, `textarea`, `email`, `number`
//!   or `dropdown` (with `choices`);
//! - `GET /api/workspaces/{ws}/forms` → `{forms: [...]}`;
//! - `GET /api/workspaces/{ws}/forms/{form}` → the form;
//! - `POST /api/workspaces/{ws}/forms/{form}/close` → the closed form.
//!
//! Public, no token:
//!
//! - `GET /forms/{form}` → the HTML page (410 with a notice once closed);
//! - `GET /forms/{form}.json` → the definition (410 once closed);
//! - `POST /forms/{form}` with `application/x-www-form-urlencoded` (answers
//!   are HTML pages) or `application/json` (a flat object of field names to
//!   strings or numbers; answers are JSON) → 201 `{task}` (HTML: 200 and a
//!   thank-you page). Refusals: 404 unknown form, 410 closed, 413 body
//!   over [`FormLimits::max_body_bytes`], 415 another content type, 400 a
//!   body that does not parse, 422 fields that do not pass (JSON:
//!   `{error, fields: {name: problem}}`; HTML: the form again, filled in,
//!   with each problem beside its field), 429 with `Retry-After` past the
//!   per-address limit, 503 if storage fails. A refused submission writes
//!   nothing.
//!
//! # What a submission writes
//!
//! One durable redb transaction, before the answer: the task document's
//! one change (by the relay's own actor), the workspace listing the
//! document, a `form-submitted` audit event and the form's submission
//! count. Then every connected member of the workspace is told of the new
//! document (`rapport/documents`), and the others see it on their next
//! sync. The task is `rapport_model::form::task::task_for`'s, written
//! with the model's own layout; it is linked to the customer
//! record whose `email` equals the form's first email field ([`customers`]).
//!
//! # The relay's identity
//!
//! The relay writes with its own ed25519 key, made on the first submission
//! and kept in `meta` (`relay_secret_key`), and a self-describing actor
//! (the key, then 16 random bytes: `relay_actor`) bound to it in the
//! actors table in the same transaction. Until the relay restarts the
//! binding is only on disk, and the registry in memory still refuses the
//! actor to every other key, as it does any self-describing actor. The
//! key is each task's `added_by` in the workspace.
//!
//! Forms live in the `forms` table (one JSON row per form), not in the
//! workspace JSON: submissions update the form's count, and the workspace
//! row need not grow with form definitions.

pub(crate) mod admin;
mod customers;
mod html;
pub(crate) mod public;
mod rate;

use std::collections::BTreeMap;
use std::sync::Mutex;

use rapport_protocol::ids::{DocumentId, PublicKey, UnixMillis};
use tracing::info;

use crate::config::FormLimits;
use crate::relay::{Relay, lock};
use crate::storage::{Store, StoreError, SubmissionWrite};
use crate::workspace::{AuditEvent, DocInfo, WorkspaceError};
use customers::CustomerIndex;
use rapport_model::form::submission::Checked;
use rapport_model::form::{Form, task::task_for};
use rapport_model::{ModelError, Record, new_document};
use rapport_protocol::relay::StoredChange;
use rate::RateLimiter;

/// Why a submission was refused after it passed its checks.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    #[error("this form does not exist")]
    UnknownForm,
    #[error("this form is closed")]
    Closed,
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("cannot write the task document: {0}")]
    Document(#[from] ModelError),
}

/// The forms of every workspace, and what submissions need.
#[derive(Debug)]
pub(crate) struct Forms {
    limits: FormLimits,
    by_id: Mutex<BTreeMap<String, Form>>,
    rate: RateLimiter,
    customers: CustomerIndex,
}

impl Forms {
    /// Every stored form.
    pub(crate) fn load(store: &Store, limits: FormLimits) -> Result<Self, StoreError> {
        let mut by_id = BTreeMap::new();
        for bytes in store.forms()? {
            let form: Form = serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt {
                path: store.path().to_owned(),
                table: "forms",
            })?;
            by_id.insert(form.id.clone(), form);
        }
        Ok(Self {
            rate: RateLimiter::new(limits.burst, limits.refill_every),
            limits,
            by_id: Mutex::new(by_id),
            customers: CustomerIndex::default(),
        })
    }

    /// Takes a form as another relay of the cluster made or closed it,
    /// keeping the submissions counted here when they are more.
    pub(crate) fn take_remote(
        &self,
        store: &Store,
        control: &crate::cluster::control::Control,
        entry: crate::cluster::control::Entry,
    ) -> Result<(), WorkspaceError> {
        let mut by_id = lock(&self.by_id);
        if !control.is_news(&entry) {
            return Ok(());
        }
        let Some(value) = entry.value else {
            return Ok(());
        };
        let mut form: Form = serde_json::from_value(value.row)
            .map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
        if let Some(here) = by_id.get(&form.id) {
            form.submissions = form.submissions.max(here.submissions);
        }
        let events: Vec<Vec<u8>> = value
            .audit
            .iter()
            .filter_map(|event| serde_json::to_vec(event).ok())
            .collect();
        let json = serde_json::to_vec(&form).map_err(|e| WorkspaceError::Invalid(e.to_string()))?;
        store.save_form(&form.id, &json, &form.workspace, &events)?;
        info!(workspace = %form.workspace, form = %form.id, "a form from the cluster");
        by_id.insert(form.id.clone(), form);
        Ok(())
    }

    pub(crate) fn get(&self, id: &str) -> Option<Form> {
        lock(&self.by_id).get(id).cloned()
    }

    /// The id of the open form called `name` in `workspace`.
    pub(crate) fn open_form_named(&self, workspace: &str, name: &str) -> Option<String> {
        lock(&self.by_id)
            .values()
            .find(|f| f.workspace == workspace && f.name == name && f.is_open())
            .map(|f| f.id.clone())
    }

    /// Turns a checked submission to form `id` into a task document of its
    /// workspace, durably; returns the task's id, the workspace's
    /// members, to tell them, and the task's changes. Blocking.
    pub(crate) fn submit(
        &self,
        relay: &Relay,
        id: &str,
        submission: &Checked,
        at: UnixMillis,
    ) -> Result<(DocumentId, Vec<PublicKey>, Vec<StoredChange>), SubmitError> {
        let form = self.get(id).ok_or(SubmitError::UnknownForm)?;
        if !form.is_open() {
            return Err(SubmitError::Closed);
        }
        let keys = relay.relay_keys()?;
        let email = form
            .email_field()
            .and_then(|field| submission.values.get(&field.name));
        let customer = match email {
            Some(email) => {
                let workspace = &form.workspace;
                // A record the workspace lists, not a comment thread.
                let is_record = |id| {
                    lock(&relay.workspaces)
                        .get(workspace)
                        .is_ok_and(|w| w.documents.get(&id).is_some_and(|d| d.thread_of.is_none()))
                };
                let records = || {
                    lock(&relay.workspaces)
                        .get(workspace)
                        .map(|w| {
                            w.documents
                                .iter()
                                .filter(|(_, info)| info.thread_of.is_none())
                                .map(|(id, _)| *id)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                self.customers
                    .find(relay.store(), workspace, email, is_record, records)?
            }
            None => None,
        };
        let task = task_for(&form, submission, customer, at);
        let doc = new_document(&Record::Task(task), keys.actor_id(), at, "form submission")?;
        let changes = StoredChange::since(&doc, &[]);
        let document = DocumentId::random(&mut rand::rng());
        let relay_key = keys.public_key();
        let bindings = [(keys.actor.clone(), relay_key)];

        let mut workspaces = lock(&relay.workspaces);
        let members: Vec<PublicKey> = workspaces
            .get(&form.workspace)?
            .members
            .keys()
            .copied()
            .collect();
        let mut forms = lock(&self.by_id);
        // Closed while this submission was on its way: nothing is written.
        let mut form = match forms.get(id) {
            Some(form) if form.is_open() => form.clone(),
            Some(_) => return Err(SubmitError::Closed),
            None => return Err(SubmitError::UnknownForm),
        };
        form.submissions += 1;
        let form_json = serde_json::to_vec(&form).unwrap_or_default();
        let event = AuditEvent {
            at: at.0,
            event: "form-submitted".into(),
            by: None,
            member: None,
            document: Some(document),
            detail: format!(
                "form {} ({}); task written by the relay",
                form.name, form.id
            ),
        };
        let info = DocInfo {
            thread_of: None,
            added_by: relay_key,
            added_at: at.0,
        };
        let workspace_id = form.workspace.clone();
        let for_automations = relay.automations.is_active(&workspace_id);
        // One row for the new listing, not the whole workspace again.
        workspaces.list_with(
            &workspace_id,
            document,
            info,
            vec![event],
            |rows, events| {
                relay.store().save_submission(&SubmissionWrite {
                    document,
                    changes: &changes,
                    bindings: &bindings,
                    workspace: rows,
                    events,
                    form: (&form.id, &form_json),
                    for_automations,
                })
            },
        )?;
        if for_automations {
            relay.automations.wake();
        }
        info!(form = %form.id, workspace = %workspace_id, task = %document, linked = customer.is_some(), "form submission stored as a task");
        forms.insert(form.id.clone(), form);
        Ok((document, members, changes))
    }
}
