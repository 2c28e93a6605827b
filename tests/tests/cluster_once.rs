//! What a cluster does once. Its automations run once per event, on whichever relay
//! the cluster's work queue hands the event to, and on another when that
//! relay takes it and dies before it is done, or is killed in the middle
//! of a burst of events; a form made through one
//! relay takes submissions through another, and closed through that one
//! refuses them on the first; a notification is e-mailed once, not once
//! per relay. A real nats-server (started here on
//! 127.0.0.1 with a temporary store) and relays in this process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use async_nats::jetstream::consumer;
use futures_util::StreamExt as _;
use rapport_client::Repo;
use rapport_client::api::RelayApi;
use rapport_model::automation::Rule;
use rapport_model::{Status, Task};
use rapport_protocol::ids::DocumentId;
use rapport_server::Config;
use rapport_tests::child_relay::ChildRelay;
use rapport_tests::forms::{HOME, generous, good_submission, http, support_form};
use rapport_tests::nats::Nats;
use rapport_tests::peer::{TestPeer, actor_of, key};
use rapport_tests::relay::{TempDir, TestRelay};
use rapport_tests::smtp::Sink;

/// A relay of the cluster on `nats`, taking the automations' events or
/// not.
async fn relay_in(dir: &TempDir, nats: &Nats, automations: bool) -> Result<TestRelay> {
    let mut config = Config::new(dir.path());
    config.cluster = vec![nats.url()];
    config.cluster_automations = automations;
    config.forms = generous();
    TestRelay::start_config(config).await
}

async fn sync(repo: &Repo, relay: &TestRelay) -> Result<()> {
    repo.sync_once(&relay.client_config(), Duration::from_secs(20), |_| {})
        .await?;
    Ok(())
}

/// The automations' work queue, as a relay takes from it.
async fn work_queue(nats: &Nats) -> Result<consumer::PullConsumer> {
    let client = async_nats::connect(nats.url()).await?;
    let stream = async_nats::jetstream::new(client)
        .get_stream("RAPPORT_CHANGES")
        .await?;
    Ok(stream
        .get_or_create_consumer(
            "automations",
            consumer::pull::Config {
                durable_name: Some("automations".to_owned()),
                deliver_policy: consumer::DeliverPolicy::New,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(10),
                max_ack_pending: 256,
                max_deliver: 50,
                ..Default::default()
            },
        )
        .await?)
}

/// Takes and finishes every event waiting in `queue` within half a
/// second; how many there were.
async fn take_all(queue: &consumer::PullConsumer) -> Result<usize> {
    let mut batch = queue
        .fetch()
        .max_messages(100)
        .expires(Duration::from_millis(500))
        .messages()
        .await?;
    let mut taken = 0;
    while let Some(message) = batch.next().await {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
        taken += 1;
    }
    Ok(taken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_relay_died_before_finishing_runs_once_on_another() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("event-a"),
        TempDir::new("event-b"),
        TempDir::new("event-c"),
        TempDir::new("event-home"),
    ];
    // Relays a and b take no events: the one that takes the event is this
    // test, standing for a relay that dies before it is done.
    let a = relay_in(&dirs[0], &nats, false).await?;
    let b = relay_in(&dirs[1], &nats, false).await?;
    let queue = work_queue(&nats).await?;

    let owner = Repo::init(dirs[3].path())?;
    let api = RelayApi::new(&a.client_config(), owner.identity().clone())?;
    let ws = tokio::task::block_in_place(|| api.create_workspace("Acme"))?;
    let rule = owner.add_automation(
        &ws,
        &Rule::parse(
            r#"when task.status changes to blocked then create task title="Unblock: {title}""#,
        )?,
    )?;
    let task = owner.create(|tx| Task::new("Ship it").write(tx))?.0;
    let listed = [(Repo::automations_id(&ws), None), (task, None)];
    tokio::task::block_in_place(|| api.add_documents(&ws, &listed))?;
    sync(&owner, &a).await?;
    // What came so far (the rules, the task) fires nothing: done.
    while take_all(&queue).await? > 0 {}

    owner.change(task, |tx| Task::update(tx, |t| t.status = Status::Blocked))?;
    // Through relay b, which has the rules from the stream by now.
    let start = Instant::now();
    loop {
        sync(&owner, &b).await?;
        let subject = format!("rapport.doc.{task}");
        let mut batch = queue
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        let mut taken = false;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!(e))?;
            if message.subject.as_str() == subject {
                // Taken, and never acknowledged: its relay died.
                taken = true;
            } else {
                message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
            }
        }
        if taken {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "the change's event never reached the work queue"
        );
    }

    // Relay c takes events; JetStream hands it the one left unfinished.
    let c = relay_in(&dirs[2], &nats, true).await?;
    let start = Instant::now();
    let made = loop {
        let (name, config) = (ws.clone(), c.client_config());
        let identity = owner.identity().clone();
        let listed =
            tokio::task::spawn_blocking(move || RelayApi::new(&config, identity)?.documents(&name))
                .await??;
        let made: Vec<DocumentId> = listed
            .into_iter()
            .filter(|d| *d != task && *d != Repo::automations_id(&ws))
            .collect();
        if !made.is_empty() {
            break made;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(40),
            "no relay ran the event its first relay left unfinished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Anything more would have come by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for relay in [&a, &b, &c] {
        sync(&owner, relay).await?;
    }
    let listed = tokio::task::block_in_place(|| api.documents(&ws))?;
    ensure!(
        listed.len() == 3,
        "the workspace lists {listed:?}: the rule made {} tasks",
        listed.len() - 2
    );
    let follow_up = owner.read(made[0], Task::read)??;
    ensure!(
        follow_up.title == "Unblock: Ship it",
        "the rule's task is {follow_up:?}"
    );
    let runs = owner
        .automations(&ws)?
        .into_iter()
        .find(|r| r.id == rule)
        .context("the rule")?
        .status
        .runs;
    ensure!(runs == 1, "the rule ran {runs} times");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_made_through_one_relay_takes_submissions_through_another() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("form-a"),
        TempDir::new("form-b"),
        TempDir::new("form-home"),
    ];
    let a = relay_in(&dirs[0], &nats, true).await?;
    let b = relay_in(&dirs[1], &nats, true).await?;
    let owner = Repo::init(dirs[2].path())?;
    let api = RelayApi::new(&a.client_config(), owner.identity().clone())?;
    let ws = tokio::task::block_in_place(|| api.create_workspace("Acme"))?;
    let form = tokio::task::block_in_place(|| api.create_form(&ws, &support_form()))?;
    let submit = |relay: &TestRelay| {
        let addr = relay.addr;
        let path = format!("/forms/{}", form.id);
        async move {
            let body = serde_json::to_vec(&good_submission())?;
            http(
                addr,
                HOME,
                "POST",
                &path,
                Some("application/json"),
                body,
                false,
            )
            .await
        }
    };
    let start = Instant::now();
    loop {
        let answer = submit(&b).await?;
        if answer.status == 201 {
            break;
        }
        ensure!(
            answer.status == 404 && start.elapsed() < Duration::from_secs(10),
            "relay b answered a submission {}: {}",
            answer.status,
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The task the submission made is the workspace's, on relay a too.
    sync(&owner, &a).await?;
    let tasks: Vec<Task> = owner
        .document_ids()?
        .into_iter()
        .filter_map(|id| owner.read(id, Task::read).ok()?.ok())
        .collect();
    ensure!(tasks.len() == 1, "tasks on relay a: {tasks:?}");

    let b_api = RelayApi::new(&b.client_config(), owner.identity().clone())?;
    tokio::task::block_in_place(|| b_api.close_form(&ws, &form.id))?;
    let start = Instant::now();
    loop {
        let answer = submit(&a).await?;
        if answer.status != 201 {
            ensure!(
                answer.status == 410,
                "a closed form answered {}: {}",
                answer.status,
                answer.body
            );
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(10),
            "relay a still takes submissions to a form closed through relay b"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The documents `ws` lists, through `config`, as `repo`'s key.
async fn listed(
    repo: &Repo,
    config: rapport_client::RelayConfig,
    ws: &str,
) -> Result<Vec<DocumentId>> {
    let (identity, ws) = (repo.identity().clone(), ws.to_owned());
    Ok(
        tokio::task::spawn_blocking(move || RelayApi::new(&config, identity)?.documents(&ws))
            .await??,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_in_a_burst_of_events_leaves_each_done_once() -> Result<()> {
    const TASKS: usize = 40;
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let dirs = [
        TempDir::new("burst-a"),
        TempDir::new("burst-c"),
        TempDir::new("burst-d"),
        TempDir::new("burst-home"),
    ];
    // Relay c, in a process of its own, is the only one taking events.
    let a = relay_in(&dirs[0], &nats, false).await?;
    let mut c = ChildRelay::spawn_on(
        env!("CARGO_BIN_EXE_relay-child").into(),
        dirs[1].path().to_owned(),
        vec![format!("cluster={}", nats.url())],
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let owner = Repo::init(dirs[3].path())?;
    let api = RelayApi::new(&a.client_config(), owner.identity().clone())?;
    let ws = tokio::task::block_in_place(|| api.create_workspace("Acme"))?;
    owner.add_automation(
        &ws,
        &Rule::parse(
            r#"when task.status changes to blocked then create task title="Unblock: {title}""#,
        )?,
    )?;
    let mut listed_now = vec![(Repo::automations_id(&ws), None)];
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let task = owner
            .create(|tx| Task::new(format!("Task {n}")).write(tx))?
            .0;
        tasks.push(task);
        listed_now.push((task, None));
    }
    tokio::task::block_in_place(|| api.add_documents(&ws, &listed_now))?;
    sync(&owner, &a).await?;
    for task in &tasks {
        owner.change(*task, |tx| Task::update(tx, |t| t.status = Status::Blocked))?;
    }
    sync(&owner, &a).await?;

    // Killed as soon as it has made the first follow-up: in the middle.
    let start = Instant::now();
    let before_kill = loop {
        let made = listed(&owner, a.client_config(), &ws).await?.len() - TASKS - 1;
        if made > 0 {
            c.sigkill()?;
            break made;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "relay c made no follow-up task"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("relay c had made {before_kill} of {TASKS} follow-ups when it was killed");
    let d = relay_in(&dirs[2], &nats, true).await?;
    // A follow-up may be listed before its content reaches the stream (its
    // relay died between the two): the event is done again, after the
    // cluster's wait for an unfinished event, and the content comes then.
    let follow_ups = |all: &[DocumentId]| -> Result<Vec<String>> {
        let mut titles = Vec::new();
        for id in all {
            if tasks.contains(id) || *id == Repo::automations_id(&ws) {
                continue;
            }
            if let Ok(Ok(task)) = owner.read(*id, Task::read) {
                titles.push(task.title);
            }
        }
        titles.sort();
        Ok(titles)
    };
    let start = Instant::now();
    loop {
        sync(&owner, &d).await?;
        let all = listed(&owner, d.client_config(), &ws).await?;
        if follow_ups(&all)?.len() >= TASKS {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {TASKS} follow-ups after relay c died having made {before_kill}",
            follow_ups(&all)?.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Anything more would have come by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sync(&owner, &d).await?;
    let all = listed(&owner, d.client_config(), &ws).await?;
    ensure!(
        all.len() == TASKS + 1 + TASKS,
        "{} follow-ups listed for {TASKS} events (relay c had made {before_kill} when it died)",
        all.len() - TASKS - 1
    );
    let mut titles = follow_ups(&all)?;
    titles.dedup();
    ensure!(
        titles.len() == TASKS,
        "follow-ups with the same title: {titles:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_e_mailed_once_by_the_whole_cluster() -> Result<()> {
    let store = TempDir::new("nats-store");
    let nats = Nats::start(store.path())?;
    let sink = Sink::default();
    let smtp = sink.start();
    let dirs = [TempDir::new("mail-a"), TempDir::new("mail-b")];
    let mut relays = Vec::new();
    for dir in &dirs {
        let mut config = Config::new(dir.path());
        config.cluster = vec![nats.url()];
        config.smtp = Some(rapport_server::SmtpSettings {
            url: smtp.clone(),
            from: "rapport <relay@agency.test>".into(),
        });
        relays.push(TestRelay::start_config(config).await?);
    }
    let (a, b) = (&relays[0], &relays[1]);
    let (owner, member) = (key(1), key(2));
    let task = DocumentId::from_bytes([91; 16]);
    let ws = a.share(&owner, &[&member], &[task]).await?;
    let api = RelayApi::new(
        &b.client_config(),
        rapport_client::identity::Identity::in_memory(member.clone()),
    )?;
    tokio::task::block_in_place(|| api.set_notify_email(&ws, Some("member@agency.test")))?;

    // The owner assigns the member a task, through relay a.
    let mut assigned = Task::new("Review the brief");
    assigned
        .assignees
        .push(rapport_protocol::ids::PublicKey::from(member.verifying_key()).to_string());
    let doc = rapport_model::new_document(
        &rapport_model::Record::Task(assigned),
        actor_of(&owner, 1),
        rapport_protocol::ids::UnixMillis(1_700_000_000_000),
        "assigned",
    )?;
    let writer = TestPeer::connect_as(&a.url(), &a.relay_id, &owner, "owner").await?;
    writer.open(task, doc);
    let start = Instant::now();
    while sink.messages().is_empty() {
        ensure!(
            start.elapsed() < Duration::from_secs(20),
            "no e-mail for the assignment"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both relays made the notification; a second e-mail would come by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mail = sink.messages();
    ensure!(
        mail.len() == 1,
        "{} e-mails for one assignment: {mail:?}",
        mail.len()
    );
    Ok(())
}
