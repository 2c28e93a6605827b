//! Automations over real sockets: each shipped rule fires exactly once when
//! its event happens on a replica that then syncs, also when the relay
//! restarts in between and afterwards; webhooks are signed, and a webhook
//! that is down is retried with its failure shown in the automations
//! document, while sync goes on.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rapport_client::Repo;
use rapport_client::api::{FieldType, FormField, NewForm, RelayApi};
use rapport_client::index::IndexEntry;
use rapport_model::automation::{EXAMPLES, Rule};
use rapport_model::{Customer, Kind, Relationship, Stage, Status, Task, Thread};
use rapport_protocol::ids::DocumentId;
use rapport_server::automations::webhook;
use rapport_tests::peer::mint_token;
use rapport_tests::relay::{TempDir, TestRelay};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATIENCE: Duration = Duration::from_secs(30);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A relay and a workspace whose owner keeps a replica.
struct World {
    _dirs: Vec<TempDir>,
    relay: TestRelay,
    owner: Repo,
    api: RelayApi,
    workspace: String,
}

impl World {
    async fn new(name: &str) -> Result<Self> {
        let relay_dir = TempDir::new(&format!("automations-{name}-relay"));
        let home = TempDir::new(&format!("automations-{name}-owner"));
        // The tests' webhook receivers listen on loopback.
        let mut relay_config = rapport_server::Config::new(relay_dir.path());
        relay_config.webhook_allow = vec!["127.0.0.1".into()];
        let relay = TestRelay::start_config(relay_config).await?;
        let owner = Repo::init(home.path())?;
        let config = relay.client_config();
        let api = RelayApi::new(&config, owner.identity().clone())?;
        let workspace = blocking(|| api.create_workspace("Acme projects"))?;
        Ok(Self {
            _dirs: vec![relay_dir, home],
            relay,
            owner,
            api,
            workspace,
        })
    }

    /// Adds rules to the workspace's automations document and syncs them.
    async fn add_rules(&self, rules: &[&str]) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for text in rules {
            ids.push(
                self.owner
                    .add_automation(&self.workspace, &Rule::parse(text)?)?,
            );
        }
        let doc = Repo::automations_id(&self.workspace);
        blocking(|| self.api.add_documents(&self.workspace, &[(doc, None)]))?;
        self.sync().await?;
        Ok(ids)
    }

    /// A form with one required field.
    fn create_form(
        &self,
        name: &str,
        title: &str,
        field: &str,
        kind: FieldType,
    ) -> Result<rapport_client::api::FormInfo> {
        let form = NewForm {
            name: name.into(),
            title: Some(title.into()),
            description: None,
            fields: vec![FormField {
                name: field.into(),
                label: String::new(),
                kind,
                required: true,
                choices: Vec::new(),
            }],
            title_field: None,
            tags: Vec::new(),
        };
        Ok(blocking(|| self.api.create_form(&self.workspace, &form))?)
    }

    /// Makes a record with `init` and puts it in the workspace.
    fn create(
        &self,
        init: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), rapport_model::ModelError>,
    ) -> Result<DocumentId> {
        let (id, ()) = self.owner.create(init)?;
        blocking(|| self.api.add_documents(&self.workspace, &[(id, None)]))?;
        Ok(id)
    }

    async fn sync(&self) -> Result<()> {
        self.owner
            .sync_once(&self.relay.client_config(), PATIENCE, |_| {})
            .await?;
        Ok(())
    }

    /// Syncs until `done` holds on the replica.
    async fn sync_until(
        &self,
        what: &str,
        mut done: impl FnMut(&Repo) -> Result<bool>,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            self.sync().await?;
            if done(&self.owner)? {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `GET` an API path as the owner.
    async fn get(&self, path: &str) -> Result<Value> {
        let token = mint_token(self.owner.identity().signing_key(), &self.relay.relay_id);
        let mut stream = tokio::net::TcpStream::connect(self.relay.addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            self.relay.addr
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let (head, body) = response.split_once("\r\n\r\n").context("no body")?;
        if !head.starts_with("HTTP/1.1 200") {
            bail!("GET {path}: {head}");
        }
        Ok(serde_json::from_str(body)?)
    }
}

fn tasks(repo: &Repo) -> Result<Vec<(DocumentId, IndexEntry)>> {
    Ok(repo
        .index()?
        .into_iter()
        .filter(|(_, e)| e.kind == Kind::Task)
        .collect())
}

fn tasks_titled(repo: &Repo, title: &str) -> Result<Vec<DocumentId>> {
    Ok(tasks(repo)?
        .into_iter()
        .filter(|(_, e)| e.title == title)
        .map(|(id, _)| id)
        .collect())
}

fn threads_on(repo: &Repo, record: DocumentId) -> Result<Vec<Thread>> {
    let mut out = Vec::new();
    for (id, entry) in repo.index()? {
        if entry.kind == Kind::Thread && entry.record.as_deref() == Some(&record.to_string()) {
            out.push(repo.read(id, Thread::read)??);
        }
    }
    Ok(out)
}

fn runs(repo: &Repo, workspace: &str, rule: &str) -> Result<(u64, u64, Option<String>)> {
    let rules = repo.automations(workspace)?;
    let rule = rules.iter().find(|r| r.id == rule).context("the rule")?;
    Ok((
        rule.status.runs,
        rule.status.failures,
        rule.status.last_error.clone(),
    ))
}

fn example(name: &str) -> &'static str {
    EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a shipped example")
        .1
}

fn today_plus(days: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let date = rapport_model::Date::utc(rapport_protocol::ids::UnixMillis(now + days * 86_400_000))
        .expect("a date");
    date.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_automations_fire_once_each_across_relay_restarts() -> Result<()> {
    let mut world = World::new("shipped").await?;
    let feedback = world.create_form("feedback", "How did we do?", "csat", FieldType::Number)?;
    let rules = world
        .add_rules(&[
            example("invoice-when-order-fulfilled"),
            example("feedback-when-query-resolved"),
            example("follow-up-when-offer-sent"),
        ])
        .await?;

    let mut order = Task::new("Order 7: 20 chairs");
    order.tags = vec!["order".into()];
    let order = world.create(|tx| order.write(tx))?;
    let mut query = Task::new("Query: invoice address");
    query.tags = vec!["query".into()];
    let query = world.create(|tx| query.write(tx))?;
    let mut acme = Customer::new("Acme Ltd", Relationship::Client);
    acme.stage = Stage::Lead;
    let acme = world.create(|tx| acme.write(tx))?;
    world.sync().await?;

    // The events happen on the replica while the relay is down, and reach
    // it after a restart.
    world.relay.stop().await?;
    for task in [order, query] {
        world
            .owner
            .change(task, |tx| Task::update(tx, |t| t.status = Status::Done))?;
    }
    world.owner.change(acme, |tx| {
        Customer::update(tx, |c| c.stage = Stage::Proposal)
    })?;
    world.relay.restart_in_place().await?;

    world
        .sync_until(
            "the invoice, the feedback comment and the follow-up",
            |repo| {
                Ok(
                    !tasks_titled(repo, "Invoice: Order 7: 20 chairs")?.is_empty()
                        && !threads_on(repo, query)?.is_empty()
                        && !tasks_titled(repo, "Follow up on the offer to Acme Ltd")?.is_empty(),
                )
            },
        )
        .await?;

    // Once more after another restart, and a while to do it wrongly in.
    world.relay.restart_in_place().await?;
    world.sync().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.sync().await?;

    let invoices = tasks_titled(&world.owner, "Invoice: Order 7: 20 chairs")?;
    assert_eq!(invoices.len(), 1, "one invoice task");
    let invoice = world.owner.read(invoices[0], Task::read)??;
    assert_eq!(invoice.tags, ["invoice"]);
    assert_eq!(invoice.status, Status::Open);
    assert_eq!(invoice.due.map(|d| d.to_string()), Some(today_plus(0)));
    assert_eq!(invoice.fields.get("source"), Some(&order.to_string()));

    let threads = threads_on(&world.owner, query)?;
    assert_eq!(threads.len(), 1, "one feedback comment thread");
    assert_eq!(threads[0].comments.len(), 1);
    let body = &threads[0].comments[0].body;
    assert!(
        body.starts_with("Thank you! Tell us how we did: http://"),
        "{body}"
    );
    assert!(body.ends_with(&format!("/forms/{}", feedback.id)), "{body}");

    let follow_ups = tasks_titled(&world.owner, "Follow up on the offer to Acme Ltd")?;
    assert_eq!(follow_ups.len(), 1, "one follow-up");
    let follow_up = world.owner.read(follow_ups[0], Task::read)??;
    assert_eq!(follow_up.due.map(|d| d.to_string()), Some(today_plus(7)));
    assert_eq!(follow_up.customer, Some(acme.to_string()));

    assert_eq!(tasks(&world.owner)?.len(), 4, "two made here, two by rules");
    for rule in &rules {
        assert_eq!(
            runs(&world.owner, &world.workspace, rule)?.0,
            1,
            "rule {rule} ran once"
        );
    }
    // The relay wrote them as itself.
    let relay_key = world.owner.read(invoices[0], |doc| {
        doc.get_changes(&[])
            .iter()
            .map(|c| c.actor_id().to_bytes()[..32].to_vec())
            .collect::<Vec<_>>()
    })?;
    assert_ne!(relay_key[0], world.owner.public_key().as_bytes().to_vec());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_fields_do_not_fire_a_rule_and_set_writes_the_record() -> Result<()> {
    let world = World::new("quiet").await?;
    let rules = world
        .add_rules(&[
            example("invoice-when-order-fulfilled"),
            "when task.status changes to blocked then set priority=urgent",
        ])
        .await?;
    let mut order = Task::new("Order 8");
    order.tags = vec!["order".into()];
    let order = world.create(|tx| order.write(tx))?;
    let mut other = Task::new("Not an order");
    other.tags = vec!["misc".into()];
    let other = world.create(|tx| other.write(tx))?;
    world.sync().await?;
    world.owner.change(order, |tx| {
        Task::update(tx, |t| t.title = "Order 8 (renamed)".into())
    })?;
    world
        .owner
        .change(other, |tx| Task::update(tx, |t| t.status = Status::Done))?;
    world.sync().await?;
    world
        .owner
        .change(order, |tx| Task::update(tx, |t| t.status = Status::Done))?;
    world.sync().await?;
    world
        .sync_until("the invoice", |repo| {
            Ok(tasks_titled(repo, "Invoice: Order 8 (renamed)")?.len() == 1)
        })
        .await?;
    world.owner.change(order, |tx| {
        Task::update(tx, |t| t.priority = rapport_model::Priority::High)
    })?;
    world.sync().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.sync().await?;
    assert_eq!(
        tasks(&world.owner)?.len(),
        3,
        "no invoice for a rename, a non-order or a priority"
    );
    assert_eq!(runs(&world.owner, &world.workspace, &rules[0])?.0, 1);

    // `set` writes into the record itself, as the relay.
    world
        .owner
        .change(other, |tx| Task::update(tx, |t| t.status = Status::Blocked))?;
    world
        .sync_until("the priority set", |repo| {
            Ok(repo.read(other, Task::read)??.priority == rapport_model::Priority::Urgent)
        })
        .await?;
    assert_eq!(runs(&world.owner, &world.workspace, &rules[1])?.0, 1);
    Ok(())
}

/// Accepts one HTTP request, answers `status`, returns the request.
async fn one_request(listener: tokio::net::TcpListener, status: &str) -> Result<String> {
    let (mut stream, _) = listener.accept().await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>())
                })
                .transpose()?
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    stream
        .write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_a_failing_one_is_retried_and_shown() -> Result<()> {
    let world = World::new("webhook").await?;
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let up_url = format!("http://{}/hook", up.local_addr()?);
    // A port with nobody listening: connections are refused.
    let down_url = {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        format!("http://{}/hook", closed.local_addr()?)
    };
    let rules = world
        .add_rules(&[
            &format!("when task.status changes to done if tags has up then webhook {up_url}"),
            &format!("when task.status changes to done if tags has down then webhook {down_url}"),
        ])
        .await?;
    let received = tokio::spawn(one_request(up, "200 OK"));

    let mut good = Task::new("Good hook");
    good.tags = vec!["up".into()];
    let good = world.create(|tx| good.write(tx))?;
    let mut bad = Task::new("Bad hook");
    bad.tags = vec!["down".into()];
    let bad = world.create(|tx| bad.write(tx))?;
    world.sync().await?;
    for task in [good, bad] {
        world
            .owner
            .change(task, |tx| Task::update(tx, |t| t.status = Status::Done))?;
    }
    world.sync().await?;

    let request = tokio::time::timeout(PATIENCE, received).await???;
    let (head, body) = request.split_once("\r\n\r\n").context("a request")?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim().to_owned())
    };
    let secret = world
        .get(&format!("/api/workspaces/{}/automations", world.workspace))
        .await?["webhook_secret"]
        .as_str()
        .context("a secret")?
        .to_owned();
    assert_eq!(
        header(webhook::SIGNATURE_HEADER),
        Some(webhook::sign(secret.as_bytes(), body.as_bytes())),
        "signed with the workspace's secret"
    );
    let event: Value = serde_json::from_str(body)?;
    assert_eq!(event["document"], good.to_string());
    assert_eq!(event["rule"], rules[0].as_str());
    assert_eq!(
        header(webhook::EVENT_HEADER).as_deref(),
        event["event"].as_str()
    );

    world
        .sync_until("the failure to show", |repo| {
            Ok(runs(repo, &world.workspace, &rules[1])?.1 >= 2)
        })
        .await?;
    let (_, failures, error) = runs(&world.owner, &world.workspace, &rules[1])?;
    assert!(failures >= 2, "retried");
    let error = error.context("the last error")?;
    // The kind of failure, never the receiver's words.
    assert!(error.contains("cannot be reached"), "{error}");
    let (runs_up, failures_up, _) = runs(&world.owner, &world.workspace, &rules[0])?;
    assert_eq!((runs_up, failures_up), (1, 0), "delivered once");

    // Sync is not held up by the failing webhook.
    let edit = world.create(|tx| Task::new("Meanwhile").write(tx))?;
    world.sync().await?;
    assert!(world.owner.heads(edit).is_ok());
    let _ = bad;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_a_document_fires_once() -> Result<()> {
    let mut world = World::new("shared").await?;
    let rules = world
        .add_rules(&[r#"when document shared if kind is requirements then comment "Shared with {title}'s client""#])
        .await?;
    let plan = rapport_model::Requirements::new("Portal plan", "Scope: a portal.");
    let plan = world.create(|tx| plan.write(tx))?;
    let task = world.create(|tx| Task::new("Not shared").write(tx))?;
    world.sync().await?;
    let client_home = TempDir::new("automations-shared-client");
    let client = Repo::init(client_home.path())?;
    let link = blocking(|| {
        world.api.create_invite(
            &world.workspace,
            &rapport_client::api::InviteRequest {
                role: rapport_client::api::Role::Client,
                documents: vec![(task, rapport_client::api::Level::Read)],
                level: None,
                expires_in_secs: 3600,
                uses: 1,
            },
        )
    })?;
    let client_api = RelayApi::new(&world.relay.client_config(), client.identity().clone())?;
    blocking(|| client_api.redeem(&link))?;
    let key = client.public_key();
    blocking(|| {
        world.api.share(
            &world.workspace,
            plan,
            &key,
            rapport_client::api::Level::Comment,
        )
    })?;
    world
        .sync_until("the comment on the shared plan", |repo| {
            Ok(!threads_on(repo, plan)?.is_empty())
        })
        .await?;
    world.relay.restart_in_place().await?;
    world.sync().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.sync().await?;
    let threads = threads_on(&world.owner, plan)?;
    assert_eq!(threads.len(), 1);
    assert_eq!(
        threads[0].comments[0].body,
        "Shared with Portal plan's client"
    );
    assert_eq!(runs(&world.owner, &world.workspace, &rules[0])?.0, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_submission_fires_its_rule_once() -> Result<()> {
    let mut world = World::new("form").await?;
    let form = world.create_form("support", "Support", "name", FieldType::Text)?;
    let rules = world
        .add_rules(&[
            "when form submitted support then set priority=high",
            "when form submitted other then set priority=low",
        ])
        .await?;
    let body = r#"{"name":"Bea"}"#;
    let request = format!(
        "POST /forms/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        form.id,
        world.relay.addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(world.relay.addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    world
        .sync_until("the submission's priority set", |repo| {
            let submitted = tasks_titled(repo, "Support: Bea")?;
            Ok(match submitted.first() {
                Some(&id) => repo.read(id, Task::read)??.priority == rapport_model::Priority::High,
                None => false,
            })
        })
        .await?;
    world.relay.restart_in_place().await?;
    world.sync().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    world.sync().await?;
    assert_eq!(tasks_titled(&world.owner, "Support: Bea")?.len(), 1);
    assert_eq!(runs(&world.owner, &world.workspace, &rules[0])?.0, 1);
    assert_eq!(
        runs(&world.owner, &world.workspace, &rules[1])?.0,
        0,
        "another form's rule"
    );
    Ok(())
}
