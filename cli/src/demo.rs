//! `rapport demo`: a relay and two replicas in one process, on loopback and
//! a temporary folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::Automerge;
use rapport_client::api::{InviteRequest, Level, RelayApi, Role};
use rapport_client::{RelayConfig, Repo};
use rapport_model::{Comment, Customer, Relationship, Requirements, Template, Thread};
use rapport_protocol::ids::DocumentId;
use rapport_server::{Config, Server};

pub(crate) fn run() -> Result<()> {
    let folder = DemoFolder::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(scenario(folder.path()))
}

async fn scenario(folder: &Path) -> Result<()> {
    let server = Server::open(Config::new(folder.join("relay")))?;
    let audience = server.relay_id().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let relay = RelayConfig {
        url: format!("ws://{addr}/sync"),
        audience: Some(audience),
    };
    println!(
        "relay      listening on {} (data in {})",
        relay.url,
        folder.join("relay").display()
    );

    let staff = Repo::init(&folder.join("staff"))?;
    let client = Repo::init(&folder.join("client"))?;
    println!("staff      {}", staff.public_key());
    println!("client     {}", client.public_key());

    // Staff set up a workspace with a customer, a requirements document
    // and its comment thread, and invite the client to comment on it.
    let staff_api = RelayApi::new(&relay, staff.identity().clone())?;
    let workspace = blocking(|| staff_api.create_workspace("Acme projects"))?;
    let (customer, ()) =
        staff.create(|tx| Customer::new("Acme Ltd", Relationship::Client).write(tx))?;
    let (doc, ()) = staff.create(|tx| {
        let mut requirements = Requirements::from_template("Customer portal", Template::Brd);
        requirements.set_customer(&customer);
        requirements.write(tx)
    })?;
    let (thread, ()) = staff.create(|tx| Thread::new(&doc).write(tx))?;
    blocking(|| {
        staff_api.add_documents(
            &workspace,
            &[(customer, None), (doc, None), (thread, Some(doc))],
        )
    })?;
    println!("staff      created workspace {workspace}: customer, requirements {doc}, thread");
    sync("staff", &staff, &relay).await?;
    let invite = InviteRequest {
        role: Role::Client,
        documents: vec![(doc, Level::Comment)],
        level: None,
        expires_in_secs: 3_600,
        uses: 1,
    };
    let link = blocking(|| staff_api.create_invite(&workspace, &invite))?;
    println!("staff      invited the client to comment: {link}");

    let client_api = RelayApi::new(&relay, client.identity().clone())?;
    blocking(|| client_api.redeem(&link))?;
    sync("client", &client, &relay).await?;
    println!(
        "client     sees {} documents (the requirements and their comments; not the customer)",
        client.document_ids()?.len()
    );

    println!("the client goes offline; staff edit the document, the client comments");
    write_under(
        &staff,
        doc,
        "## Scope",
        "A self-service portal for Acme's buyers.",
    )?;
    println!("staff      wrote under \"## Scope\"");
    let question = Comment::new(
        "c1",
        &client.public_key(),
        crate::context::now_millis(),
        "Does the portal need single sign-on?",
    );
    client.change(thread, |tx| Thread::update(tx, |t| t.add(question)))?;
    println!("client     asked a question in the comments");

    sync("staff", &staff, &relay).await?;
    sync("client", &client, &relay).await?;
    sync("staff", &staff, &relay).await?;

    let (ours, theirs) = (body(&staff, doc)?, body(&client, doc)?);
    ensure!(
        staff.heads(doc)? == client.heads(doc)?,
        "the replicas did not converge"
    );
    ensure!(ours == theirs, "the replicas differ");
    ensure!(ours.contains("self-service"), "the staff edit was lost");
    let staff_comments = comments(&staff, thread)?;
    ensure!(
        staff_comments == comments(&client, thread)?,
        "the comments differ"
    );
    ensure!(
        staff_comments.iter().any(|c| c.contains("single sign-on")),
        "the question was lost"
    );
    println!("\nboth replicas now hold the same document:\n");
    for line in ours.lines() {
        println!("    {line}");
    }
    println!("\nand the same comments:\n");
    for comment in &staff_comments {
        println!("    {comment}");
    }
    let _ = stop.send(());
    relay_task.await.context("the relay task failed")??;
    println!("\nrelay stopped; its redb file and both replicas' are removed with the demo folder");
    Ok(())
}

async fn sync(who: &str, repo: &Repo, relay: &RelayConfig) -> Result<()> {
    let progress = repo
        .sync_once(relay, Duration::from_secs(30), |_| {})
        .await?;
    println!(
        "{who:<10} synced {} document{} ({} bytes up, {} down)",
        progress.documents_total,
        if progress.documents_total == 1 {
            ""
        } else {
            "s"
        },
        progress.bytes_sent,
        progress.bytes_received
    );
    Ok(())
}

/// Inserts a paragraph after a heading; the model writes only the new
/// line, so whatever else others typed elsewhere in the document stays.
fn write_under(repo: &Repo, doc: DocumentId, heading: &str, text: &str) -> Result<()> {
    repo.change(doc, |tx| {
        let body = Requirements::body_markdown(tx)?;
        let mut lines: Vec<&str> = body.split('\n').collect();
        let at = lines
            .iter()
            .position(|line| {
                line.trim_start_matches('#').trim() == heading.trim_start_matches('#').trim()
            })
            .map_or(lines.len(), |i| i + 1);
        lines.insert(at, text);
        Requirements::set_body_markdown(tx, &lines.join("\n"))
    })?;
    Ok(())
}

/// The comments of a thread, one line each.
fn comments(repo: &Repo, thread: DocumentId) -> Result<Vec<String>> {
    let thread = repo.read(thread, |d: &Automerge| Thread::read(d))??;
    Ok(thread
        .comments
        .iter()
        .map(|c| {
            let author = c
                .author
                .get(..8)
                .map_or_else(|| "unknown".to_owned(), |short| format!("{short}…"));
            format!("{author}: {}", c.body)
        })
        .collect())
}

/// Runs blocking relay API calls off the async threads.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn body(repo: &Repo, doc: DocumentId) -> Result<String> {
    Ok(repo.read(doc, |d: &Automerge| Requirements::body_markdown(d))??)
}

/// A temporary folder for the demo, removed at the end.
struct DemoFolder(PathBuf);

impl DemoFolder {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("rapport-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DemoFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
