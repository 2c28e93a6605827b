//! A workspace to submit to: a relay, an owner and a staff member each
//! with a replica, and two customers.

use std::net::IpAddr;

use anyhow::Result;
use rapport_client::api::{FormInfo, NewForm, RelayApi};
use rapport_client::{RelayConfig, Repo};
use rapport_model::workspace::AuditEvent;
use rapport_model::{Customer, Header, Kind, Relationship, Task};
use rapport_protocol::ids::DocumentId;
use rapport_server::FormLimits;
use serde_json::Value;

use super::http::{Answer, HOME, http};
use super::{PATIENCE, blocking};
use crate::relay::{TempDir, TestRelay, staff_invite};

/// A relay, a workspace with an owner and a staff member (each with a
/// replica), and two customers: Acme (the submitter's email) and Globex.
#[derive(Debug)]
pub struct World {
    _dirs: Vec<TempDir>,
    pub relay: TestRelay,
    pub config: RelayConfig,
    pub owner: Repo,
    pub owner_api: RelayApi,
    pub staff: Repo,
    pub workspace: String,
    pub acme: DocumentId,
    pub globex: DocumentId,
}

impl World {
    /// Sets up the world; `name` tells its folders apart.
    pub async fn new(name: &str, limits: FormLimits) -> Result<Self> {
        let relay_dir = TempDir::new(&format!("forms-{name}-relay"));
        let owner_home = TempDir::new(&format!("forms-{name}-owner"));
        let staff_home = TempDir::new(&format!("forms-{name}-staff"));
        let relay = TestRelay::start_with_forms(relay_dir.path(), limits).await?;
        let config = relay.client_config();
        let owner = Repo::init(owner_home.path())?;
        let owner_api = RelayApi::new(&config, owner.identity().clone())?;
        let workspace = blocking(|| owner_api.create_workspace("Acme support"))?;
        let mut customer = Customer::new("Acme Ltd", Relationship::Client);
        customer.email = "buyer@acme.test".into();
        let (acme, ()) = owner.create(|tx| customer.write(tx))?;
        let mut other = Customer::new("Globex", Relationship::Customer);
        other.email = "ops@globex.test".into();
        let (globex, ()) = owner.create(|tx| other.write(tx))?;
        blocking(|| owner_api.add_documents(&workspace, &[(globex, None), (acme, None)]))?;
        let link = blocking(|| owner_api.create_invite(&workspace, &staff_invite(1)))?;
        let staff = Repo::init(staff_home.path())?;
        let staff_api = RelayApi::new(&config, staff.identity().clone())?;
        blocking(|| staff_api.redeem(&link))?;
        owner.sync_once(&config, PATIENCE, |_| {}).await?;
        staff.sync_once(&config, PATIENCE, |_| {}).await?;
        Ok(Self {
            _dirs: vec![relay_dir, owner_home, staff_home],
            relay,
            config,
            owner,
            owner_api,
            staff,
            workspace,
            acme,
            globex,
        })
    }

    /// Creates `form` as the owner.
    pub fn create_form(&self, form: &NewForm) -> Result<FormInfo> {
        Ok(blocking(|| {
            self.owner_api.create_form(&self.workspace, form)
        })?)
    }

    /// The documents of the workspace, as the relay lists them.
    pub fn documents(&self) -> Result<Vec<DocumentId>> {
        Ok(blocking(|| self.owner_api.documents(&self.workspace))?)
    }

    /// The workspace's audit log.
    pub fn events(&self) -> Result<Vec<AuditEvent>> {
        Ok(blocking(|| {
            self.owner_api.audit(&self.workspace, None, None)
        })?)
    }

    /// Posts `body` to `form` as JSON.
    pub async fn post_json(&self, form: &str, body: &Value) -> Result<Answer> {
        self.post_json_from(HOME, form, body).await
    }

    /// Posts `body` to `form` as JSON, from the loopback address `from`.
    pub async fn post_json_from(&self, from: IpAddr, form: &str, body: &Value) -> Result<Answer> {
        http(
            self.relay.addr,
            from,
            "POST",
            &format!("/forms/{form}"),
            Some("application/json"),
            serde_json::to_vec(body)?,
            false,
        )
        .await
    }

    /// Posts `body` to `form` as a browser's urlencoded form.
    pub async fn post_form(&self, form: &str, body: &str) -> Result<Answer> {
        http(
            self.relay.addr,
            HOME,
            "POST",
            &format!("/forms/{form}"),
            Some("application/x-www-form-urlencoded"),
            body.as_bytes().to_vec(),
            false,
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Answer> {
        http(self.relay.addr, HOME, "GET", path, None, Vec::new(), false).await
    }

    /// The task documents a replica holds.
    pub fn tasks(repo: &Repo) -> Result<Vec<(DocumentId, Task)>> {
        let mut out = Vec::new();
        for id in repo.document_ids()? {
            let task = repo.read(id, |doc| match Header::read(doc) {
                Ok(header) if header.kind == Kind::Task => Task::read(doc).map(Some),
                _ => Ok(None),
            })??;
            if let Some(task) = task {
                out.push((id, task));
            }
        }
        Ok(out)
    }
}
