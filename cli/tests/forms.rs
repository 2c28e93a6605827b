//! `rapport form create|list|show-url|close` and `rapport automation
//! add|list|remove|examples` through the built binary, against a relay in
//! its own process: a submission to the printed URL arrives as a task on
//! the next `rapport sync`, and a failing webhook shows in `automation
//! list`.

use std::io::{Read, Write};

use serde_json::Value;

mod common;

use common::{Home, Relay};

/// POSTs a JSON body to an `http://` URL; returns the status and body.
fn post_json(url: &str, body: &Value) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(host).expect("the relay listens");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("the request is sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn an_admin_creates_lists_shares_and_closes_a_form() {
    let relay = Relay::start();
    let admin = Home::new("admin");
    admin.ok(&["init", "--name", "Ada Admin"]);
    admin.ok(&["workspace", "create", "Acme support", "--relay", &relay.url]);
    let customer = admin.json(&[
        "customer",
        "add",
        "Acme Ltd",
        "--kind",
        "client",
        "--email",
        "buyer@acme.test",
    ]);
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    admin.ok(&["sync"]);
    assert!(admin.json(&["form", "list"]).as_array().unwrap().is_empty());

    let created = admin.json(&[
        "form",
        "create",
        "support",
        "--title",
        "Support request",
        "--field",
        "name",
        "--field",
        "email:email",
        "--field",
        "product:dropdown:Basic,Pro,Enterprise",
        "--field",
        "problem:textarea",
        "--field",
        "priority?:dropdown:low,normal,high,urgent",
        "--title-field",
        "problem",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    let url = created["url"].as_str().unwrap().to_owned();
    assert!(id.starts_with("form-"), "{created}");
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("/forms/{id}")));
    assert_eq!(created["open"], true);
    assert_eq!(created["fields"].as_array().unwrap().len(), 5);
    assert_eq!(created["fields"][4]["required"], false);
    assert_eq!(created["fields"][2]["choices"][2], "Enterprise");

    let listed = admin.json(&["form", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["submissions"], 0);
    let shown = admin.json(&["form", "show-url", "support"]);
    assert_eq!(shown["url"], url.as_str());
    assert_eq!(shown["json_url"], format!("{url}.json").as_str());
    assert_eq!(admin.ok(&["form", "show-url", &id[..8]]).trim(), url);

    // Someone fills it in; the next sync brings the task.
    let (status, body) = post_json(
        &url,
        &serde_json::json!({
            "name": "Bea Buyer",
            "email": "buyer@acme.test",
            "product": "Pro",
            "problem": "The export button does nothing",
            "priority": "urgent",
        }),
    );
    assert_eq!(status, 201, "{body}");
    admin.ok(&["sync"]);
    let tasks = admin.json(&["task", "list"]);
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = admin.json(&["task", "show", tasks[0]["id"].as_str().unwrap()]);
    assert_eq!(task["title"], "The export button does nothing");
    assert_eq!(task["customer"], customer_id.as_str());
    assert_eq!(task["priority"], "urgent");
    assert!(task.to_string().contains("form:support"), "{task}");
    assert_eq!(admin.json(&["form", "list"])[0]["submissions"], 1);

    let closed = admin.json(&["form", "close", "support"]);
    assert_eq!(closed["open"], false);
    assert_eq!(closed["id"], id.as_str());
    let line = admin.ok(&["form", "show-url", &id]);
    assert!(line.contains("(closed)"), "{line}");
    let (status, body) = post_json(&url, &serde_json::json!({ "name": "Late" }));
    assert_eq!(status, 410, "{body}");
    assert_eq!(admin.json(&["form", "list"])[0]["open"], false);

    // A satisfaction survey tagged `feedback` feeds the dashboard's CSAT.
    let survey = admin.json(&[
        "form",
        "create",
        "feedback",
        "--tag",
        "feedback",
        "--field",
        "csat:dropdown:1,2,3,4,5",
        "--field",
        "comment?:textarea",
    ]);
    assert_eq!(survey["tags"][0], "feedback");
    let survey_url = survey["url"].as_str().unwrap();
    for score in ["4", "5"] {
        let (status, body) = post_json(survey_url, &serde_json::json!({ "csat": score }));
        assert_eq!(status, 201, "{body}");
    }
    admin.ok(&["sync"]);
    let csat = &admin.json(&["dashboard"])["csat"];
    assert_eq!(csat["responses"], 2, "{csat}");
    assert_eq!(csat["average"], 4.5, "{csat}");

    let err = admin.error(&["form", "close", "nosuch"]);
    assert!(err.contains("rapport form list"), "{err}");
    let err = admin.error(&["form", "create", "Bad Name", "--field", "name"]);
    assert!(err.contains("form name"), "{err}");
    let out = admin.run(&["form", "create", "x", "--field", "plan:dropdown"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("choices"));
}

#[test]
fn automations_are_added_listed_run_and_removed() {
    let relay = Relay::start();
    let admin = Home::new("automations");
    admin.ok(&["init", "--name", "Ann Lee"]);
    admin.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let examples = admin.json(&["automation", "examples"]);
    assert_eq!(examples.as_array().map(Vec::len), Some(3));
    let invoice = admin.json(&[
        "automation",
        "add",
        "--example",
        "invoice-when-order-fulfilled",
    ]);
    // Nobody listens on this port: the webhook fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let down = format!("http://{}/hook", closed.local_addr().expect("an address"));
    drop(closed);
    let rule = format!("when task.status changes to done if tags has down then webhook {down}");
    let hook = admin.json(&["automation", "add", &rule]);
    assert!(
        admin
            .error(&["automation", "add", "whenever it rains"])
            .contains("not a rule")
    );
    assert!(
        admin
            .error(&["automation", "add", "--example", "nope"])
            .contains("no example `nope`")
    );

    admin.ok(&["sync"]);
    let task = admin.json(&["task", "add", "Hook me", "--tag", "down"]);
    let task = task["id"].as_str().expect("an id").to_owned();
    admin.ok(&["sync"]);
    admin.ok(&["task", "done", &task]);
    let hook_id = hook["id"].as_str().expect("an id");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let failed = loop {
        admin.ok(&["sync"]);
        let list = admin.json(&["automation", "list"]);
        let row = list
            .as_array()
            .and_then(|rules| rules.iter().find(|r| r["id"] == hook_id))
            .cloned()
            .expect("the webhook rule is listed");
        if row["failures"].as_u64() >= Some(1) {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure shown: {row}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    // What failed, in words a staff member may read: never the receiver's.
    assert!(
        failed["last_error"]
            .as_str()
            .expect("an error")
            .contains("cannot be reached")
    );
    let human = admin.ok(&["automation", "list"]);
    assert!(human.contains(&down), "{human}");

    let invoice_id = invoice["id"].as_str().expect("an id");
    admin.ok(&["automation", "remove", invoice_id]);
    let left = admin.json(&["automation", "list"]);
    assert_eq!(left.as_array().map(Vec::len), Some(1));
    assert!(
        admin
            .error(&["automation", "remove", invoice_id])
            .contains("no automation")
    );
}
