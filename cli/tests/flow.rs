//! The CLI as people use it: a relay on 127.0.0.1:0, a staff home and a
//! client home, every step through the built binary.

mod common;

use common::{Home, Relay};

#[test]
fn staff_and_client_work_together_through_the_cli() {
    let relay = Relay::start();
    let staff = Home::new("staff");
    let client = Home::new("client");
    staff.ok(&["init", "--name", "Sam Staff"]);
    client.ok(&["init", "--name", "Cleo Client"]);
    let client_key = client.json(&["whoami"])["key"].as_str().unwrap().to_owned();

    let created = staff.json(&[
        "workspace",
        "create",
        "Acme projects",
        "--relay",
        &relay.url,
    ]);
    let workspace = created["id"].as_str().unwrap().to_owned();
    assert!(workspace.starts_with("ws-"));
    assert_eq!(staff.json(&["workspace", "list"])[0]["current"], true);

    let customer = staff.json(&[
        "customer",
        "add",
        "Acme Ltd",
        "--kind",
        "client",
        "--email",
        "buyer@acme.test",
    ]);
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let doc = staff.json(&[
        "doc",
        "new",
        "Customer portal",
        "--customer",
        &customer_id[..6],
        "--template",
        "brd",
    ]);
    let doc_id = doc["id"].as_str().unwrap().to_owned();
    staff.ok(&["doc", "append", &doc_id, "Single sign-on is required."]);
    staff.ok(&["sync"]);

    let invite = staff.json(&[
        "invite", "create", "--role", "client", "--doc", &doc_id, "--access", "comment",
    ]);
    let link = invite["link"].as_str().unwrap().to_owned();
    let joined = client.json(&["join", &link]);
    assert_eq!(joined["workspace"], workspace.as_str());
    assert_eq!(joined["role"], "client");
    client.ok(&["sync"]);

    let seen = client.json(&["doc", "show", &doc_id[..8]]);
    assert!(
        seen.to_string().contains("Single sign-on is required."),
        "{seen}"
    );
    client.ok(&["comment", "add", &doc_id, "Does SSO include Azure AD?"]);
    client.ok(&["sync"]);
    staff.ok(&["sync"]);
    let comments = staff.json(&["comment", "list", &doc_id]);
    assert!(
        comments.to_string().contains("Does SSO include Azure AD?"),
        "{comments}"
    );
    let theirs = client.json(&["comment", "list", &doc_id]);
    assert_eq!(comments, theirs, "both sides list the same comments");

    // The client cannot see the customer record or its tasks until they
    // are shared.
    let task = staff.json(&[
        "task",
        "add",
        "Send the offer",
        "--customer",
        &customer_id[..8],
        "--due",
        "2026-12-15",
    ]);
    let task_id = task["id"].as_str().unwrap().to_owned();
    staff.ok(&["sync"]);
    client.ok(&["sync"]);
    assert!(
        client
            .json(&["customer", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        client
            .json(&["task", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    staff.ok(&[
        "share",
        &customer_id,
        "--with",
        &client_key[..10],
        "--access",
        "read",
    ]);
    staff.ok(&[
        "share",
        &task_id,
        "--with",
        &client_key[..10],
        "--access",
        "write",
    ]);
    client.ok(&["sync"]);
    assert_eq!(
        client.json(&["customer", "list"]),
        staff.json(&["customer", "list"])
    );
    assert_eq!(
        client.json(&["task", "list"]),
        staff.json(&["task", "list"])
    );

    // The client may write the task: its change reaches the staff.
    client.ok(&["task", "done", &task_id[..8]]);
    client.ok(&["sync"]);
    staff.ok(&["sync"]);
    assert_eq!(staff.json(&["task", "show", &task_id])["status"], "done");
    assert_eq!(
        client.json(&["doc", "show", &doc_id]),
        staff.json(&["doc", "show", &doc_id])
    );

    let events: Vec<String> = staff
        .json(&["audit"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "workspace-created",
        "invite-created",
        "invite-redeemed",
        "member-added",
        "document-shared",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} missing from {events:?}"
        );
    }
    let members = staff.json(&["member", "list"]);
    assert_eq!(members.as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_is_one_line_with_the_fix_and_nothing_is_written() {
    let home = Home::new("bad");
    let err = home.error(&["whoami"]);
    assert!(err.contains("rapport init"), "{err}");
    assert!(!home.path().exists() || std::fs::read_dir(home.path()).unwrap().count() == 0);
    home.ok(&["init", "--name", "Ann"]);
    let err = home.error(&["init", "--name", "Ann"]);
    assert!(err.contains("already holds"), "{err}");
    let err = home.error(&["invite", "list"]);
    assert!(err.contains("rapport workspace create"), "{err}");
    let err = home.error(&[
        "workspace",
        "create",
        "X",
        "--relay",
        "ws://127.0.0.1:9/sync",
    ]);
    assert!(err.contains("relay"), "{err}");
    let err = home.error(&["join", "not-a-link"]);
    assert!(err.contains("invite link"), "{err}");
}

#[test]
fn shares_are_listed_and_removed() {
    let relay = Relay::start();
    let staff = Home::new("share-staff");
    let client = Home::new("share-client");
    staff.ok(&["init", "--name", "Sam Staff"]);
    client.ok(&["init", "--name", "Cleo Client"]);
    let client_key = client.json(&["whoami"])["key"].as_str().unwrap().to_owned();
    staff.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let task = staff.add(&["task", "add", "Kick-off"]);
    let other = staff.add(&["task", "add", "Internal"]);
    staff.ok(&["sync"]);
    let invite = staff.json(&[
        "invite", "create", "--role", "client", "--doc", &task, "--access", "comment",
    ]);
    client.ok(&["join", invite["link"].as_str().unwrap()]);
    staff.ok(&[
        "share",
        &other,
        "--with",
        &client_key[..10],
        "--access",
        "read",
    ]);

    let all = staff.json(&["share", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let one = staff.json(&["share", "list", &task[..8]]);
    assert_eq!(one[0]["member"], client_key.as_str(), "{one}");
    assert_eq!(one[0]["access"], "comment", "{one}");
    assert_eq!(one[0]["name"], "Cleo Client", "{one}");

    staff.ok(&["share", "remove", &other[..8], &client_key[..10]]);
    let left = staff.json(&["share", "list"]);
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    client.ok(&["sync"]);
    let seen = client.json(&["task", "list"]).to_string();
    assert!(seen.contains(&task) && !seen.contains(&other), "{seen}");
    // Sharing still needs all three.
    let incomplete = staff.run(&["share", &other[..8], "--with", &client_key[..10]]);
    assert!(!incomplete.status.success());
    assert!(String::from_utf8_lossy(&incomplete.stderr).contains("--access"));
}
