//! `rapport demo`: a relay and two replicas in one process, on loopback and
//! a temporary folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::Automerge;
use rapport_client::model::{Customer, Relationship, Requirements, Template};
use rapport_client::{RelayConfig, Repo};
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

    let (customer, ()) =
        staff.create(|tx| Customer::new("Acme Ltd", Relationship::Client).write(tx))?;
    let (doc, ()) = staff.create(|tx| {
        let mut requirements = Requirements::from_template("Customer portal", Template::Brd);
        requirements.set_customer(&customer);
        requirements.write(tx)
    })?;
    println!("staff      created customer {customer} and requirements {doc}");
    sync("staff", &staff, &relay).await?;

    client.want(doc)?;
    sync("client", &client, &relay).await?;
    ensure!(
        client.heads(doc)? == staff.heads(doc)?,
        "the client did not receive the document"
    );

    println!("both go offline and edit the same document");
    write_under(
        &staff,
        doc,
        "## Scope",
        "A self-service portal for Acme's buyers.",
    )?;
    println!("staff      wrote under \"## Scope\"");
    write_under(
        &client,
        doc,
        "## Timeline and deadlines",
        "Launch before the Q3 trade fair.",
    )?;
    println!("client     wrote under \"## Timeline and deadlines\"");

    sync("staff", &staff, &relay).await?;
    sync("client", &client, &relay).await?;
    sync("staff", &staff, &relay).await?;

    let (ours, theirs) = (body(&staff, doc)?, body(&client, doc)?);
    ensure!(
        staff.heads(doc)? == client.heads(doc)?,
        "the replicas did not converge"
    );
    ensure!(ours == theirs, "the replicas differ");
    ensure!(
        ours.contains("self-service") && ours.contains("Q3 trade fair"),
        "an edit was lost"
    );
    println!("both replicas now hold the same document, with both edits:\n");
    for line in ours.lines() {
        println!("    {line}");
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

/// Inserts a paragraph after a heading, as a text splice: whatever else
/// others typed elsewhere in the document stays.
fn write_under(repo: &Repo, doc: DocumentId, heading: &str, text: &str) -> Result<()> {
    repo.change(doc, |tx| {
        Requirements::update(tx, |requirements| {
            let at = requirements
                .body
                .as_str()
                .find(heading)
                .map(|i| {
                    requirements.body.as_str()[..i].chars().count() + heading.chars().count() + 2
                })
                .unwrap_or(requirements.body.len());
            requirements.body.splice(at, 0, &format!("{text}\n"))
        })
        .and_then(|spliced| spliced)
    })?;
    Ok(())
}

fn body(repo: &Repo, doc: DocumentId) -> Result<String> {
    let requirements = repo.read(doc, |d: &Automerge| Requirements::read(d))??;
    Ok(requirements.body.as_str().to_owned())
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
