//! Intake forms over real sockets: a submission becomes exactly one task
//! that every staff replica receives, linked to the right customer and
//! readable by the client's typed model; bad input, closed forms and
//! floods are refused with their 4xx and write nothing.

use rapport_model::workspace::AuditEvent;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::Automerge;
use rapport_client::api::{FieldType, FormField, FormInfo, InviteRequest, NewForm, RelayApi, Role};
use rapport_client::{RelayConfig, Repo};
use rapport_model::{Customer, Header, Kind, Priority, Relationship, Status, Task};
use rapport_protocol::ids::DocumentId;
use rapport_server::{Config, FormLimits, Server};
use rapport_tests::relay::TempDir;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const PATIENCE: Duration = Duration::from_secs(30);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A relay with form limits of the test's choosing.
struct Relay {
    addr: SocketAddr,
    relay_id: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), rapport_server::ServerError>>>,
}

impl Relay {
    async fn start(data: &TempDir, limits: FormLimits) -> Result<Self> {
        let server = Server::open(Config::new(data.path()))?.with_form_limits(limits);
        let relay_id = server.relay_id().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            relay_id,
            stop: Some(stop),
            task: Some(task),
        })
    }

    fn config(&self) -> RelayConfig {
        RelayConfig {
            url: format!("ws://{}/sync", self.addr),
            audience: Some(self.relay_id.clone()),
        }
    }

    async fn stop(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An answer from the relay.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request from `from` (a loopback address), the body sent
/// while the answer is read, so that an early answer (413) is seen even
/// if the relay stops reading.
async fn http(
    addr: SocketAddr,
    from: IpAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    chunked: bool,
) -> Result<Answer> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket.connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    }
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        if chunked {
            for chunk in body.chunks(8 * 1024) {
                write
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                write.write_all(chunk).await?;
                write.write_all(b"\r\n").await?;
            }
            write.write_all(b"0\r\n\r\n").await?;
        } else {
            write.write_all(&body).await?;
        }
        std::io::Result::Ok(write)
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match read.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the answer arrived: keep what was read.
            Err(_) if !raw.is_empty() => break,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = writer.await;
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Result<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16)?;
            if size == 0 {
                break;
            }
            out.push_str(after.get(..size).context("a short chunk")?);
            rest = after.get(size + 2..).unwrap_or_default();
        }
        out
    } else {
        rest.to_owned()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn field(name: &str, kind: FieldType, required: bool, choices: &[&str]) -> FormField {
    FormField {
        name: name.into(),
        label: String::new(),
        kind,
        required,
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn support_form() -> NewForm {
    NewForm {
        name: "support".into(),
        title: Some("Support request".into()),
        description: Some("Tell us what went wrong.".into()),
        fields: vec![
            field("name", FieldType::Text, true, &[]),
            field("email", FieldType::Email, true, &[]),
            field(
                "product",
                FieldType::Dropdown,
                true,
                &["Basic", "Pro", "Enterprise"],
            ),
            field("problem", FieldType::Textarea, true, &[]),
            field("seats", FieldType::Number, false, &[]),
            field(
                "priority",
                FieldType::Dropdown,
                false,
                &["low", "normal", "high", "urgent"],
            ),
        ],
        title_field: None,
        tags: Vec::new(),
    }
}

fn good_submission() -> Value {
    json!({
        "name": "Bea Buyer",
        "email": "Buyer@Acme.test",
        "product": "Pro",
        "problem": "The export button does nothing.",
        "seats": 12,
        "priority": "high",
    })
}

/// A relay, a workspace with an owner and a staff member (each with a
/// replica), and two customers: Acme (the submitter's email) and Globex.
struct World {
    _dirs: Vec<TempDir>,
    relay: Relay,
    config: RelayConfig,
    owner: Repo,
    owner_api: RelayApi,
    staff: Repo,
    workspace: String,
    acme: DocumentId,
    globex: DocumentId,
}

impl World {
    async fn new(name: &str, limits: FormLimits) -> Result<Self> {
        let relay_dir = TempDir::new(&format!("forms-{name}-relay"));
        let owner_home = TempDir::new(&format!("forms-{name}-owner"));
        let staff_home = TempDir::new(&format!("forms-{name}-staff"));
        let relay = Relay::start(&relay_dir, limits).await?;
        let config = relay.config();
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
        let link = blocking(|| {
            owner_api.create_invite(
                &workspace,
                &InviteRequest {
                    role: Role::Staff,
                    documents: Vec::new(),
                    level: None,
                    expires_in_secs: 3600,
                    uses: 1,
                },
            )
        })?;
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

    fn create_form(&self, form: &NewForm) -> Result<FormInfo> {
        Ok(blocking(|| {
            self.owner_api.create_form(&self.workspace, form)
        })?)
    }

    /// The documents of the workspace, as the relay lists them.
    fn documents(&self) -> Result<Vec<DocumentId>> {
        Ok(blocking(|| self.owner_api.documents(&self.workspace))?)
    }

    fn events(&self) -> Result<Vec<AuditEvent>> {
        Ok(blocking(|| {
            self.owner_api.audit(&self.workspace, None, None)
        })?)
    }

    async fn post_json(&self, form: &str, body: &Value) -> Result<Answer> {
        self.post_json_from(HOME, form, body).await
    }

    async fn post_json_from(&self, from: IpAddr, form: &str, body: &Value) -> Result<Answer> {
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

    async fn post_form(&self, form: &str, body: &str) -> Result<Answer> {
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

    async fn get(&self, path: &str) -> Result<Answer> {
        http(self.relay.addr, HOME, "GET", path, None, Vec::new(), false).await
    }

    /// The task documents a replica holds.
    fn tasks(repo: &Repo) -> Result<Vec<(DocumentId, Task)>> {
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

fn generous() -> FormLimits {
    FormLimits {
        burst: 10_000,
        ..FormLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_submission_becomes_one_task_that_every_staff_replica_reads() -> Result<()> {
    let world = World::new("submit", generous()).await?;
    let form = world.create_form(&support_form())?;
    assert!(form.open);
    let before = world.documents()?;

    // The definition is public, as JSON and as a plain HTML form.
    let definition = world.get(&format!("/forms/{}.json", form.id)).await?;
    assert_eq!(definition.status, 200, "{}", definition.body);
    assert_eq!(definition.json()["fields"][2]["choices"][1], "Pro");
    let page = world.get(&format!("/forms/{}", form.id)).await?;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert!(!page.body.contains("<script"));

    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let task_id: DocumentId = answer.json()["task"]
        .as_str()
        .context("the task's id")?
        .parse()?;

    // Stored and listed before the answer: exactly one more document.
    let after = world.documents()?;
    assert_eq!(after.len(), before.len() + 1);
    assert!(after.contains(&task_id));
    let submitted: Vec<AuditEvent> = world
        .events()?
        .into_iter()
        .filter(|e| e.event == "form-submitted")
        .collect();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].document, Some(task_id));

    // Every staff replica receives it on its next sync.
    for repo in [&world.owner, &world.staff] {
        repo.sync_once(&world.config, PATIENCE, |_| {}).await?;
        let tasks = World::tasks(repo)?;
        assert_eq!(tasks.len(), 1, "exactly one task: {tasks:?}");
        let (id, task) = &tasks[0];
        assert_eq!(*id, task_id);
        assert_eq!(task.title, "Support request: Bea Buyer");
        assert_eq!(task.status, Status::Open);
        assert_eq!(task.priority, Priority::High);
        assert_eq!(task.tags, ["form:support"]);
        assert_eq!(
            task.customer.as_deref(),
            Some(world.acme.to_string().as_str()),
            "linked to the customer whose email matches, not {}",
            world.globex
        );
        assert_eq!(task.fields["form"], form.id);
        assert_eq!(task.fields["email"], "Buyer@Acme.test");
        assert_eq!(task.fields["product"], "Pro");
        assert_eq!(task.fields["problem"], "The export button does nothing.");
        assert_eq!(task.fields["seats"], "12");
        assert!(task.fields["submitted_at"].ends_with('Z'));
    }

    // A staff member edits it like any task, and the owner sees the edit.
    world.staff.change(task_id, |tx| {
        Task::update(tx, |t| t.status = Status::InProgress)
    })?;
    world
        .staff
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let status = world
        .owner
        .read(task_id, |doc| Task::read(doc).map(|t| t.status))??;
    assert_eq!(status, Status::InProgress);

    // A browser's post gets a thank-you page and makes one more task; no
    // customer has this email, so it is linked to none.
    let answer = world
        .post_form(
            &form.id,
            "name=Carl+Case&email=carl%40nowhere.test&product=Basic&problem=Hi%0D%0Athere&seats=&priority=",
        )
        .await?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("Thank you"));
    assert_eq!(world.documents()?.len(), before.len() + 2);
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let tasks = World::tasks(&world.owner)?;
    let carl = tasks
        .iter()
        .find(|(id, _)| *id != task_id)
        .map(|(_, t)| t)
        .context("the second task")?;
    assert_eq!(carl.customer, None);
    assert_eq!(carl.priority, Priority::Normal);
    assert!(
        !carl.fields.contains_key("seats"),
        "empty optional fields are left out"
    );
    let listed = blocking(|| world.owner_api.form(&world.workspace, &form.id))?;
    assert_eq!(listed.submissions, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_customer_link_follows_an_email_changed_after_the_first_submission() -> Result<()> {
    let world = World::new("relink", generous()).await?;
    let form = world.create_form(&support_form())?;
    let first = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(first.status, 201, "{}", first.body);

    // Acme's email moves to Globex: the relay's cached index must see it.
    world.owner.change(world.acme, |tx| {
        Customer::update(tx, |c| c.email = "old@acme.test".into())
    })?;
    world.owner.change(world.globex, |tx| {
        Customer::update(tx, |c| c.email = "buyer@acme.test".into())
    })?;
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let second = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(second.status, 201, "{}", second.body);
    let second: DocumentId = second.json()["task"].as_str().context("id")?.parse()?;
    world
        .staff
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let customer = world
        .staff
        .read(second, |doc| Task::read(doc).map(|t| t.customer))??;
    assert_eq!(customer, Some(world.globex.to_string()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_its_4xx_and_writes_nothing() -> Result<()> {
    let world = World::new("bad", generous()).await?;
    let form = world.create_form(&support_form())?;
    let before = world.documents()?;
    let with = |changes: Value| {
        let mut body = good_submission();
        for (k, v) in changes.as_object().into_iter().flatten() {
            match v {
                Value::Null => {
                    if let Some(map) = body.as_object_mut() {
                        map.remove(k);
                    }
                }
                v => body[k] = v.clone(),
            }
        }
        body
    };

    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "missing required field",
            with(json!({ "name": null })),
            "name",
            "is required",
        ),
        (
            "empty required field",
            with(json!({ "problem": "  " })),
            "problem",
            "is required",
        ),
        (
            "email without @",
            with(json!({ "email": "buyer.acme.test" })),
            "email",
            "not an email",
        ),
        (
            "number that is not one",
            with(json!({ "seats": "twelve" })),
            "seats",
            "not a number",
        ),
        (
            "dropdown value not offered",
            with(json!({ "product": "Gold" })),
            "product",
            "must be one of",
        ),
        (
            "unknown field",
            with(json!({ "colour": "red" })),
            "colour",
            "not a field",
        ),
    ];
    for (case, body, field, problem) in cases {
        let answer = world.post_json(&form.id, &body).await?;
        assert_eq!(answer.status, 422, "{case}: {}", answer.body);
        let problems = answer.json();
        let said = problems["fields"][field].as_str().unwrap_or_default();
        assert!(said.contains(problem), "{case}: {problems}");
        assert!(
            problems["error"]
                .as_str()
                .is_some_and(|e| e.contains(field)),
            "{case}"
        );
    }

    // A browser's post with a bad field gets the form back, filled in,
    // with the problem beside the field.
    let answer = world
        .post_form(
            &form.id,
            "name=Bea&email=nope&product=Pro&problem=%3Cb%3Ehelp%3C%2Fb%3E",
        )
        .await?;
    assert_eq!(answer.status, 422);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(
        answer.body.contains("is not an email address"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("&lt;b&gt;help&lt;/b&gt;"),
        "kept and escaped"
    );

    let malformed: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "broken JSON",
            Some("application/json"),
            b"{\"name\":".to_vec(),
            400,
        ),
        (
            "JSON that is not an object",
            Some("application/json"),
            b"[1,2]".to_vec(),
            400,
        ),
        (
            "nested JSON value",
            Some("application/json"),
            br#"{"name":{"a":1}}"#.to_vec(),
            400,
        ),
        (
            "broken percent-encoding",
            Some("application/x-www-form-urlencoded"),
            b"name=%zz".to_vec(),
            400,
        ),
        (
            "repeated field",
            Some("application/x-www-form-urlencoded"),
            b"name=a&name=b".to_vec(),
            400,
        ),
        ("plain text", Some("text/plain"), b"hello".to_vec(), 415),
        ("no content type", None, b"name=a".to_vec(), 415),
    ];
    for (case, content_type, body, status) in malformed {
        let answer = http(
            world.relay.addr,
            HOME,
            "POST",
            &format!("/forms/{}", form.id),
            content_type,
            body,
            false,
        )
        .await?;
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        assert!(!answer.body.is_empty(), "{case}: a message");
    }

    // Oversize bodies: 413, with a declared length and without one.
    let mut big = good_submission();
    big["problem"] = Value::String("x".repeat(70 * 1024));
    let big = serde_json::to_vec(&big)?;
    for chunked in [false, true] {
        let answer = http(
            world.relay.addr,
            HOME,
            "POST",
            &format!("/forms/{}", form.id),
            Some("application/json"),
            big.clone(),
            chunked,
        )
        .await?;
        assert_eq!(answer.status, 413, "chunked: {chunked}: {}", answer.body);
        assert!(
            answer.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("64 KiB"))
        );
    }

    // An unknown form: 404, as JSON for programs and as a page for people.
    let answer = world
        .post_json("form-doesNotExist", &good_submission())
        .await?;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"].is_string());
    let answer = world.post_form("form-doesNotExist", "name=a").await?;
    assert_eq!(answer.status, 404);
    assert!(answer.body.contains("No such form"));
    assert_eq!(world.get("/forms/form-doesNotExist").await?.status, 404);
    assert_eq!(
        world.get("/forms/form-doesNotExist.json").await?.status,
        404
    );

    assert_eq!(world.documents()?, before, "nothing was added");
    assert!(
        !world.events()?.iter().any(|e| e.event == "form-submitted"),
        "nothing was recorded"
    );
    let listed = blocking(|| world.owner_api.form(&world.workspace, &form.id))?;
    assert_eq!(listed.submissions, 0);
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    assert!(World::tasks(&world.owner)?.is_empty());

    // The same submission, done right, goes through: the cases above were
    // refused for their fault alone.
    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 201, "{}", answer.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_form_says_so_and_takes_nothing() -> Result<()> {
    let world = World::new("closed", generous()).await?;
    let form = world.create_form(&support_form())?;
    assert_eq!(
        world.post_json(&form.id, &good_submission()).await?.status,
        201
    );
    let closed = blocking(|| world.owner_api.close_form(&world.workspace, &form.id))?;
    assert!(!closed.open);
    let before = world.documents()?;

    let page = world.get(&format!("/forms/{}", form.id)).await?;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("closed"), "{}", page.body);
    assert!(!page.body.contains("<form"), "no form to fill in");
    assert_eq!(
        world.get(&format!("/forms/{}.json", form.id)).await?.status,
        410
    );
    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 410);
    assert!(
        answer.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("closed"))
    );
    let answer = world.post_form(&form.id, "name=Bea").await?;
    assert_eq!(answer.status, 410);

    assert_eq!(world.documents()?, before);
    let forms = blocking(|| world.owner_api.forms(&world.workspace))?;
    assert_eq!(forms.len(), 1);
    assert!(!forms[0].open);
    assert_eq!(forms[0].submissions, 1);
    let events: Vec<String> = world
        .events()?
        .iter()
        .map(|e| e.event.clone())
        .filter(|e| e.starts_with("form-"))
        .collect();
    assert_eq!(events, ["form-created", "form-submitted", "form-closed"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_manage_forms() -> Result<()> {
    let world = World::new("admins", generous()).await?;
    let staff_api = RelayApi::new(&world.config, world.staff.identity().clone())?;
    let refused = blocking(|| staff_api.create_form(&world.workspace, &support_form()))
        .expect_err("staff may not create forms");
    assert_eq!(refused.status(), Some(403));
    let form = world.create_form(&support_form())?;
    for refused in [
        blocking(|| staff_api.forms(&world.workspace)).map(drop),
        blocking(|| staff_api.close_form(&world.workspace, &form.id)).map(drop),
    ] {
        assert_eq!(refused.expect_err("admins only").status(), Some(403));
    }
    let duplicate = blocking(|| {
        world
            .owner_api
            .create_form(&world.workspace, &support_form())
    })
    .expect_err("one open form per name");
    assert_eq!(duplicate.status(), Some(409));
    let mut bad = support_form();
    bad.name = "Support Form".into();
    let refused =
        blocking(|| world.owner_api.create_form(&world.workspace, &bad)).expect_err("a bad name");
    assert_eq!(refused.status(), Some(400));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_is_refused_after_the_burst_per_address() -> Result<()> {
    let mut world = World::new(
        "flood",
        FormLimits {
            burst: 5,
            // No refill during the test, however slow the machine.
            refill_every: Duration::from_secs(3600),
            ..FormLimits::default()
        },
    )
    .await?;
    let form = world.create_form(&support_form())?;
    let before = world.documents()?.len();
    for i in 0..5 {
        let answer = world.post_json(&form.id, &good_submission()).await?;
        assert_eq!(answer.status, 201, "submission {i}: {}", answer.body);
    }
    for _ in 0..3 {
        let answer = world.post_json(&form.id, &good_submission()).await?;
        assert_eq!(answer.status, 429, "{}", answer.body);
        let retry: u64 = answer
            .header("retry-after")
            .context("a Retry-After header")?
            .parse()?;
        assert!((1..=3600).contains(&retry), "{retry}");
        assert!(
            answer.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("Too many"))
        );
    }
    // Bad submissions count too: a flood of garbage is a flood.
    let answer = world.post_form(&form.id, "name=%zz").await?;
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains("Too many submissions"));
    assert_eq!(
        world.documents()?.len(),
        before + 5,
        "only the burst was written"
    );

    // Another address has its own bucket (Linux routes all of 127/8 to
    // the loopback interface).
    if cfg!(target_os = "linux") {
        let other: IpAddr = "127.0.0.2".parse()?;
        let answer = world
            .post_json_from(other, &form.id, &good_submission())
            .await?;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    world.relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_and_the_relay_identity_survive_a_restart() -> Result<()> {
    let relay_dir = TempDir::new("forms-restart-relay");
    let home = TempDir::new("forms-restart-owner");
    let mut relay = Relay::start(&relay_dir, generous()).await?;
    let owner = Repo::init(home.path())?;
    let api = RelayApi::new(&relay.config(), owner.identity().clone())?;
    let workspace = blocking(|| api.create_workspace("Restarts"))?;
    let form = blocking(|| api.create_form(&workspace, &support_form()))?;
    let first = http(
        relay.addr,
        HOME,
        "POST",
        &format!("/forms/{}", form.id),
        Some("application/json"),
        serde_json::to_vec(&good_submission())?,
        false,
    )
    .await?;
    assert_eq!(first.status, 201, "{}", first.body);
    relay.stop().await?;

    let relay = Relay::start(&relay_dir, generous()).await?;
    let api = RelayApi::new(&relay.config(), owner.identity().clone())?;
    let again = blocking(|| api.form(&workspace, &form.id))?;
    assert_eq!(again.submissions, 1);
    let second = http(
        relay.addr,
        HOME,
        "POST",
        &format!("/forms/{}", form.id),
        Some("application/json"),
        serde_json::to_vec(&good_submission())?,
        false,
    )
    .await?;
    assert_eq!(second.status, 201, "{}", second.body);
    owner.sync_once(&relay.config(), PATIENCE, |_| {}).await?;
    let authors: Vec<Vec<u8>> = owner
        .document_ids()?
        .into_iter()
        .map(|id| {
            owner.read(id, |doc: &Automerge| {
                doc.get_changes(&[])
                    .first()
                    .map(|c| c.actor_id().to_bytes().to_vec())
                    .unwrap_or_default()
            })
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(authors.len(), 2);
    assert_eq!(authors[0], authors[1], "one relay actor across restarts");
    if authors[0].len() <= 32 {
        bail!("the relay's actor is not self-describing");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connected_staff_replica_gets_the_task_while_connected() -> Result<()> {
    let world = World::new("live", generous()).await?;
    let form = world.create_form(&support_form())?;
    let live = world.staff.sync_live(world.config.clone());
    let mut progress = live.progress();
    tokio::time::timeout(PATIENCE, async {
        while !progress.borrow_and_update().connected {
            let _ = progress.changed().await;
        }
    })
    .await?;
    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let task: DocumentId = answer.json()["task"].as_str().context("id")?.parse()?;
    let arrived = tokio::time::timeout(PATIENCE, async {
        loop {
            let title = world
                .staff
                .read(task, |doc| Task::read(doc).map(|t| t.title).ok())
                .ok()
                .flatten();
            if let Some(title) = title {
                return title;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?;
    assert_eq!(arrived, "Support request: Bea Buyer");
    live.stop().await;
    Ok(())
}
