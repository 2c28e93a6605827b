//! `rapport watch` and the change feed through the built binary: which
//! record changed, which fields, by whom; resumable from a cursor across a
//! relay restart; a client sees only what is shared with them.

mod common;

use common::{Home, Relay};
use serde_json::Value;

/// Every entry `home` gets from `rapport --json watch --once --since SINCE`.
fn feed(home: &Home, since: &str) -> Vec<Value> {
    home.ok(&["--json", "watch", "--once", "--since", since])
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn the_feed_says_what_changed_resumes_after_a_restart_and_shows_a_client_only_their_share() {
    let relay = Relay::start();
    let staff = Home::new("watch-staff");
    let client = Home::new("watch-client");
    staff.ok(&["init", "--name", "Sam Staff"]);
    client.ok(&["init", "--name", "Cleo Client"]);
    staff.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let secret = staff.add(&["customer", "add", "Hidden Corp", "--kind", "customer"]);
    let shared = staff.add(&["task", "add", "Kick-off"]);
    staff.ok(&["sync"]);
    let invite = staff.json(&[
        "invite", "create", "--role", "client", "--doc", &shared, "--access", "comment",
    ]);
    client.ok(&["join", invite["link"].as_str().unwrap()]);
    client.ok(&["sync"]);
    let start = feed(&staff, "0");
    let mark = start.last().expect("the first writes")["cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    staff.ok(&["customer", "set", &secret[..8], "stage=won", "score=90"]);
    staff.ok(&["task", "set", &shared[..8], "priority=high"]);
    staff.ok(&["sync"]);
    let relay = relay.restart();
    client.ok(&["comment", "add", &shared[..8], "Looks good"]);
    client.ok(&["sync"]);

    // After the restart, the cursor from before still means the same.
    let news = feed(&staff, &mark);
    let of = |id: &str| -> Vec<&Value> { news.iter().filter(|e| e["document"] == id).collect() };
    let won = of(&secret);
    assert_eq!(won.len(), 1, "{news:#?}");
    assert_eq!(won[0]["kind"], "customer");
    assert_eq!(won[0]["title"], "Hidden Corp");
    assert_eq!(won[0]["by_name"], "Sam Staff");
    let fields: Vec<&str> = won[0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"stage") && fields.contains(&"score"),
        "{fields:?}"
    );
    assert!(!fields.contains(&"name"), "{fields:?}");
    let comment = news
        .iter()
        .find(|e| e["kind"] == "thread")
        .expect("the client's comment");
    assert_eq!(comment["by_name"], "Cleo Client");
    // A new thread: the record it is on and its first comment.
    assert_eq!(comment["fields"], serde_json::json!(["comments", "record"]));
    // Nothing after the last cursor.
    let last = news.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    assert!(feed(&staff, &last).is_empty());

    // The client sees the task and the thread, never the customer.
    let theirs = feed(&client, "0");
    assert!(
        theirs.iter().any(|e| e["document"] == shared.as_str()),
        "{theirs:#?}"
    );
    assert!(
        theirs.iter().all(|e| e["document"] != secret.as_str()),
        "a client was shown a record not shared with them: {theirs:#?}"
    );
    // Bad cursors are named.
    staff.fails(&["watch", "--once", "--since", "yesterday"], "not a cursor");
    drop(relay);
}
