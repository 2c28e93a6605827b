//! What the browser tests run against: a relay in this process (tokens
//! required, 127.0.0.1:0, a temporary folder) and a staff member, Sam, as a
//! Rust replica with a workspace holding a customer, two tasks, a
//! requirements document made from the BRD template with its comment
//! thread (one comment from Sam), and an internal requirements document
//! that is never shared.
//!
//! The tests' own code is synchronous (the browser driver blocks); the
//! relay and the replica's syncs run on a runtime [`World`] owns.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use automerge::iter::Span;
use automerge::{Automerge, ReadDoc, ScalarValue};
use rapport_client::api::{InviteLink, InviteRequest, Level, RelayApi, Role};
use rapport_client::{LiveSync, RelayConfig, Repo};
use rapport_model::{Comment, Customer, Relationship, Requirements, Task, Template, Thread};
use rapport_protocol::ids::DocumentId;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::broadcast::error::RecvError;

use super::{Browser, Editor, Join, Run, Until, Viewport};
use crate::relay::{TempDir, TestRelay};

/// The shared requirements document's title.
pub const TITLE: &str = "Customer portal";
/// The requirements document that is never shared.
pub const INTERNAL_TITLE: &str = "Internal pricing";
/// The customer both requirements documents are for.
pub const CUSTOMER: &str = "Acme Ltd";
/// The staff member's name.
pub const STAFF_NAME: &str = "Sam Staff";
/// Sam's comment on the shared document.
pub const WELCOME: &str = "Welcome! Tell us what the portal must do.";
/// How long a replica's sync may take.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a page may take to show what it should.
pub const WAIT: Duration = Duration::from_secs(20);

/// The relay, Sam's replica and the workspace's records.
pub struct World {
    pub relay: TestRelay,
    pub config: RelayConfig,
    /// Sam's replica.
    pub staff: Repo,
    pub staff_api: RelayApi,
    pub workspace: String,
    pub customer: DocumentId,
    pub requirements: DocumentId,
    pub thread: DocumentId,
    pub internal: DocumentId,
    pub tasks: Vec<DocumentId>,
    runtime: Runtime,
    _dirs: Vec<TempDir>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("relay", &self.relay.addr)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl World {
    /// Starts the relay and writes the workspace; `name` names the folders.
    pub fn new(name: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let relay_dir = TempDir::new(&format!("{name}-relay"));
        let home = TempDir::new(&format!("{name}-staff"));
        let relay = runtime.block_on(TestRelay::start(relay_dir.path()))?;
        let config = relay.client_config();
        let staff = Repo::init(home.path())?;
        let staff_api = RelayApi::new(&config, staff.identity().clone())?.with_name(STAFF_NAME);
        let workspace = staff_api.create_workspace("Acme projects")?;
        let records = Records::write(&staff)?;
        staff_api.add_documents(&workspace, &records.listing())?;
        let world = Self {
            relay,
            config,
            staff,
            staff_api,
            workspace,
            customer: records.customer,
            requirements: records.requirements,
            thread: records.thread,
            internal: records.internal,
            tasks: records.tasks,
            runtime,
            _dirs: vec![relay_dir, home],
        };
        world.sync()?;
        Ok(world)
    }

    /// Runs a future on the world's runtime (the relay's).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// `http://127.0.0.1:PORT`, where the relay serves the app.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.relay.addr)
    }

    /// The app's route to the shared requirements document.
    pub fn doc_route(&self) -> String {
        format!("#/w/{}/d/{}", self.workspace, self.requirements)
    }

    /// The app's route to the dashboard.
    pub fn dashboard_route(&self) -> String {
        format!("#/w/{}/dashboard", self.workspace)
    }

    /// An invite for one client to the shared document at `level`.
    pub fn invite(&self, level: Level) -> Result<InviteLink> {
        let request = InviteRequest {
            role: Role::Client,
            documents: vec![(self.requirements, level)],
            level: None,
            expires_in_secs: 3_600,
            uses: 1,
        };
        Ok(self.staff_api.create_invite(&self.workspace, &request)?)
    }

    /// A client invited at `level` joins as `name` in a new page `page`
    /// (a laptop's window) and opens the shared document.
    pub fn client_joins(
        &self,
        browser: &mut Browser,
        page: &str,
        name: &str,
        level: Level,
    ) -> Result<()> {
        let link = self.invite(level)?;
        browser.open(page, &link.to_string(), Viewport::LAPTOP)?;
        match browser.join(page, name)? {
            Join::Joined => {}
            refused => bail!("{name} could not join: {refused:?}"),
        }
        browser.wait_for(page, Until::Title(TITLE), WAIT)?;
        browser.open_doc(page, TITLE)?;
        browser.wait_for(page, Until::Comment(WELCOME), WAIT)
    }

    /// Sam opens the app in a new page `page` with his key imported, and
    /// the shared document.
    pub fn staff_opens(&self, browser: &mut Browser, page: &str, viewport: Viewport) -> Result<()> {
        browser.open(page, &self.base_url(), viewport)?;
        browser.import_key(page, &self.staff_key_file()?)?;
        browser.wait_for(page, Until::Title(TITLE), WAIT)?;
        browser.route(page, &self.doc_route())?;
        browser.wait_for(page, Until::Comment(WELCOME), WAIT)
    }

    /// Sam's key file, as the web app's "Import key" takes it.
    pub fn staff_key_file(&self) -> Result<String> {
        Ok(serde_json::to_string(
            &self.staff.identity().export(STAFF_NAME),
        )?)
    }

    /// One sync of Sam's replica.
    pub fn sync(&self) -> Result<()> {
        self.block_on(self.staff.sync_once(&self.config, PATIENCE, |_| {}))?;
        Ok(())
    }

    /// Sam's replica syncing live until the handle is dropped.
    pub fn live(&self) -> LiveSync {
        let _inside = self.runtime.enter();
        self.staff.sync_live(self.config.clone())
    }

    /// Waits until `holds` is true of Sam's replica, looking again after
    /// each change to it (a live sync must be running to bring others').
    pub fn wait_for_staff(
        &self,
        what: &str,
        timeout: Duration,
        mut holds: impl FnMut(&Repo) -> Result<bool>,
    ) -> Result<()> {
        let mut events = self.staff.subscribe();
        self.block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                if holds(&self.staff)? {
                    return Ok(());
                }
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                    Ok(Err(RecvError::Closed)) => bail!("Sam's replica closed"),
                    Err(_) => bail!("Sam's replica: {what} did not happen within {timeout:?}"),
                }
            }
        })
    }

    /// The shared document's body as Markdown lines, in Sam's replica.
    pub fn body_markdown(&self) -> Result<String> {
        Ok(self.staff.read(self.requirements, |doc: &Automerge| {
            Requirements::body_markdown(doc)
        })??)
    }

    /// The shared document's title, in Sam's replica.
    pub fn title(&self) -> Result<String> {
        let doc = self
            .staff
            .read(self.requirements, |doc: &Automerge| Requirements::read(doc))??;
        Ok(doc.title)
    }

    /// The shared document's text runs and their marks, in Sam's replica,
    /// as the page's `markRuns` gives them.
    pub fn runs(&self) -> Result<Vec<Run>> {
        self.staff.read(self.requirements, runs_of)?
    }

    /// What a page showing the shared document should hold, from Sam's
    /// replica: the Markdown without its bold markers (the only mark the
    /// tests write), and the runs.
    pub fn expected_editor(&self) -> Result<Editor> {
        Ok(Editor {
            text: self.body_markdown()?.replace("**", ""),
            runs: self.runs()?,
        })
    }

    /// The bodies of the shared document's comments, in Sam's replica.
    pub fn comments(&self) -> Result<Vec<String>> {
        let thread = self
            .staff
            .read(self.thread, |doc: &Automerge| Thread::read(doc))??;
        Ok(thread.comments.into_iter().map(|c| c.body).collect())
    }

    /// Sam writes a line under `heading` in the shared document, changing
    /// only that line (so what others type elsewhere stays).
    pub fn write_under(&self, heading: &str, text: &str) -> Result<()> {
        self.staff.change(self.requirements, |tx| {
            let body = Requirements::body_markdown(tx)?;
            let mut lines: Vec<&str> = body.split('\n').collect();
            let at = lines
                .iter()
                .position(|line| line.trim_start_matches('#').trim() == heading)
                .map_or(lines.len(), |i| i + 1);
            lines.insert(at, text);
            Requirements::set_body_markdown(tx, &lines.join("\n"))
        })?;
        Ok(())
    }

    /// The body index (automerge text units) where `text` first starts in
    /// the shared document, in Sam's replica.
    pub fn index_of(&self, text: &str) -> Result<usize> {
        self.staff
            .read(self.requirements, |doc: &Automerge| index_of(doc, text))?
    }

    /// The body index (automerge text units) at the end of the block that
    /// follows the heading `heading`: where typing goes "under" it.
    pub fn index_under(&self, heading: &str) -> Result<usize> {
        self.staff.read(self.requirements, |doc: &Automerge| {
            index_under(doc, heading)
        })?
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Stop the relay gracefully before the runtime (and the folders) go.
        let _ = self.runtime.block_on(self.relay.stop());
    }
}

/// The records Sam writes at the start.
struct Records {
    customer: DocumentId,
    requirements: DocumentId,
    thread: DocumentId,
    internal: DocumentId,
    tasks: Vec<DocumentId>,
}

impl Records {
    fn write(staff: &Repo) -> Result<Self> {
        let (customer, ()) = staff.create(|tx| {
            let mut customer = Customer::new(CUSTOMER, Relationship::Client);
            customer.set("stage", "proposal")?;
            customer.set("score", "40")?;
            customer.write(tx).map_err(anyhow::Error::from)
        })?;
        let requirements = new_requirements(staff, TITLE, &customer)?;
        let internal = new_requirements(staff, INTERNAL_TITLE, &customer)?;
        let (thread, ()) = staff.create(|tx| {
            let mut thread = Thread::new(&requirements);
            thread.add(Comment::new(
                "c-welcome",
                &staff.public_key(),
                1_767_225_600_000,
                WELCOME,
            ));
            thread.write(tx)
        })?;
        let mut tasks = Vec::new();
        for (title, due) in [
            ("Send the offer", "2026-01-15"),
            ("Invoice Acme", "2099-12-31"),
        ] {
            let (task, ()) = staff.create(|tx| {
                let mut task = Task::new(title);
                task.set_customer(&customer);
                task.set("due", due)?;
                task.assign(&staff.public_key());
                task.write(tx).map_err(anyhow::Error::from)
            })?;
            tasks.push(task);
        }
        Ok(Self {
            customer,
            requirements,
            thread,
            internal,
            tasks,
        })
    }

    /// Every document, threads with their record, for `add_documents`.
    fn listing(&self) -> Vec<(DocumentId, Option<DocumentId>)> {
        let mut listing = vec![
            (self.customer, None),
            (self.requirements, None),
            (self.thread, Some(self.requirements)),
            (self.internal, None),
        ];
        listing.extend(self.tasks.iter().map(|t| (*t, None)));
        listing
    }
}

/// A requirements document for `customer`, its body the BRD template.
fn new_requirements(staff: &Repo, title: &str, customer: &DocumentId) -> Result<DocumentId> {
    let (id, ()) = staff.create(|tx| {
        let mut doc = Requirements::new(title, "");
        doc.set_customer(customer);
        doc.write(tx)?;
        Requirements::set_body_markdown(tx, &Template::Brd.body())
    })?;
    Ok(id)
}

/// The body's text runs with their marks (blocks left out), as the page's
/// `markRuns` gives them.
fn runs_of(doc: &Automerge) -> Result<Vec<Run>> {
    let Some((_, body)) = doc.get(automerge::ROOT, "body")? else {
        return Ok(Vec::new());
    };
    let mut runs = Vec::new();
    for span in doc.spans(&body)? {
        if let Span::Text { text, marks } = span {
            let marks = marks
                .iter()
                .flat_map(|set| set.iter())
                .filter_map(|(name, value)| Some((name.to_owned(), mark_value(value)?)))
                .collect();
            runs.push(Run { text, marks });
        }
    }
    Ok(runs)
}

fn mark_value(value: &ScalarValue) -> Option<Value> {
    Some(match value {
        ScalarValue::Null => return None,
        ScalarValue::Boolean(b) => json!(b),
        ScalarValue::Str(s) => json!(s.as_str()),
        ScalarValue::Int(n) => json!(n),
        ScalarValue::Uint(n) => json!(n),
        ScalarValue::F64(n) => json!(n),
        other => json!(other.to_string()),
    })
}

fn body_spans(doc: &Automerge) -> Result<Vec<Span>> {
    let (_, body) = doc
        .get(automerge::ROOT, "body")?
        .context("the document has no body")?;
    Ok(doc.spans(&body)?.collect())
}

fn index_of(doc: &Automerge, wanted: &str) -> Result<usize> {
    let mut index = 0;
    for span in body_spans(doc)? {
        match span {
            Span::Block(_) => index += 1,
            Span::Text { text, .. } => {
                if let Some(at) = text.find(wanted) {
                    return Ok(index + text[..at].chars().count());
                }
                index += text.chars().count();
            }
        }
    }
    bail!("the body does not hold {wanted:?}")
}

fn index_under(doc: &Automerge, heading: &str) -> Result<usize> {
    let mut index = 0;
    let mut after_heading = false;
    let mut in_target = false;
    for span in body_spans(doc)? {
        match span {
            Span::Block(_) if in_target => return Ok(index),
            Span::Block(_) => {
                in_target = after_heading;
                index += 1;
            }
            Span::Text { text, .. } => {
                after_heading = text == heading && !in_target;
                index += text.chars().count();
            }
        }
    }
    if in_target {
        return Ok(index);
    }
    bail!("no block follows the heading {heading:?}")
}
