//! Notifications through the built binary: a mention reaches the members
//! it names who may see the record, and nobody else; an assignment and a
//! task due today reach the assignee; and a member who gave an address
//! gets an e-mail through the SMTP server the relay was given (a sink this
//! test runs on 127.0.0.1).

mod common;

use std::time::{Duration, Instant};

use common::{Home, Relay};
use rapport_tests::smtp::Sink;
use serde_json::Value;

/// Polls `home`'s inbox (`--all`) until `check` holds; the last list.
fn inbox_until(home: &Home, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = home.json(&["inbox", "--all"]);
        let list = list.as_array().unwrap().clone();
        if check(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "{what}: still {list:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn key_of(home: &Home) -> String {
    home.json(&["whoami"])["key"].as_str().unwrap().to_owned()
}

#[test]
fn mentions_assignments_and_due_tasks_reach_only_who_may_see_them() {
    let sink = Sink::default();
    let smtp = sink.start();
    let relay = Relay::start_with(&[
        "--listen",
        "127.0.0.1:0",
        "--smtp-url",
        &smtp,
        "--smtp-from",
        "rapport <relay@agency.test>",
    ]);
    let sam = Home::new("inbox-sam");
    let sara = Home::new("inbox-sara");
    let cleo = Home::new("inbox-cleo");
    sam.ok(&["init", "--name", "Sam Owner"]);
    sara.ok(&["init", "--name", "Sara Staff"]);
    cleo.ok(&["init", "--name", "Cleo Client"]);
    sam.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let secret = sam.add(&["customer", "add", "Hidden Corp", "--kind", "customer"]);
    let task = sam.add(&["task", "add", "Kick-off"]);
    sam.ok(&["sync"]);
    let staff = sam.json(&["invite", "create", "--role", "staff"]);
    sara.ok(&["join", staff["link"].as_str().unwrap()]);
    let client = sam.json(&[
        "invite", "create", "--role", "client", "--doc", &task, "--access", "comment",
    ]);
    cleo.ok(&["join", client["link"].as_str().unwrap()]);
    sara.ok(&["inbox", "email", "sara@agency.test"]);
    cleo.ok(&["inbox", "email", "cleo@client.test"]);

    // Sam mentions Sara and Cleo by first name on the task they both see,
    // and Cleo on a customer she may not see.
    sam.ok(&["comment", "add", &task[..8], "@sara @Cleo: agenda attached"]);
    sam.ok(&[
        "comment",
        "add",
        &secret[..8],
        "@Cleo must not hear of this",
    ]);
    // Notifications follow the order of the writes: once this last one
    // has reached Sara, the one before it has been dealt with.
    sam.ok(&["comment", "add", &task[..8], "@sara agenda final?"]);
    sam.ok(&["sync"]);

    let saras = inbox_until(&sara, "Sara's mentions", |l| l.len() == 2);
    let cleos = inbox_until(&cleo, "Cleo's mention", |l| !l.is_empty());
    assert!(
        saras.iter().any(|n| n["text"] == "@sara agenda final?"),
        "{saras:#?}"
    );
    for list in [&cleos, &saras] {
        let first = list
            .iter()
            .find(|n| n["text"].as_str().unwrap().contains("agenda attached"))
            .expect("the first mention");
        assert_eq!(first["kind"], "mention");
        assert_eq!(first["record"], task.as_str());
        assert_eq!(first["title"], "Kick-off");
        assert_eq!(first["by_name"], "Sam Owner");
    }
    assert_eq!(cleos.len(), 1, "{cleos:#?}");
    assert!(sam.json(&["inbox", "--all"]).as_array().unwrap().is_empty());

    // Both gave an address: each got their mentions on the task by e-mail,
    // and Cleo nothing about the customer. (Sam gave none.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.messages().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "e-mails missing: {:?}",
            sink.messages()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mail = sink.messages();
    let to = |address: &str| {
        mail.iter()
            .filter(|(rcpt, _)| rcpt.iter().any(|r| r.contains(address)))
            .count()
    };
    assert_eq!(
        (to("sara@agency.test"), to("cleo@client.test")),
        (2, 1),
        "{mail:?}"
    );
    assert!(
        mail.iter()
            .all(|(_, text)| text.contains("Sam Owner mentioned you on Kick-off")),
        "{mail:?}"
    );

    // Marking read.
    cleo.ok(&["inbox", "read"]);
    assert!(cleo.json(&["inbox"]).as_array().unwrap().is_empty());
    assert_eq!(cleo.json(&["inbox", "--all"])[0]["read"], true);

    // An assignment, and (after a restart, when the relay looks) the task
    // due today, reach Sara.
    let date = chrono_today();
    sam.ok(&[
        "task",
        "set",
        &task[..8],
        &format!("assignees={}", key_of(&sara)),
        &format!("due={date}"),
    ]);
    sam.ok(&["sync"]);
    inbox_until(&sara, "Sara's assignment", |l| {
        l.iter().any(|n| n["kind"] == "assigned")
    });
    let relay = relay.restart();
    let list = inbox_until(&sara, "Sara's due task", |l| {
        l.iter().any(|n| n["kind"] == "due-today")
    });
    assert_eq!(
        list.iter().filter(|n| n["kind"] == "due-today").count(),
        1,
        "{list:#?}"
    );
    // Cleo is not an assignee; she heard of nothing more.
    assert_eq!(cleo.json(&["inbox", "--all"]).as_array().unwrap().len(), 1);
    drop(relay);
}

/// Today's date (UTC) as the CLI takes it.
fn chrono_today() -> String {
    let now = rapport_protocol::ids::UnixMillis::from(std::time::SystemTime::now());
    rapport_model::Date::utc(now).unwrap().to_string()
}
