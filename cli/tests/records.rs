//! The record commands (`customer`, `task`, `doc`, `comment`) run as a user
//! runs them: the built binary on a fresh home, with and without `--json`.

use std::process::Command;

use serde_json::Value;

mod common;

use common::{Home, texts};

fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {value}"))
}

#[test]
fn customers_add_list_show_set_and_touch() {
    let home = Home::init("customers");
    let acme = home.add(&[
        "customer",
        "add",
        "Acme",
        "--kind",
        "client",
        "--email",
        "buyer@acme.test",
        "--rep",
        "me",
        "--tag",
        "retainer",
        "--field",
        "industry=retail",
    ]);
    home.add(&[
        "customer",
        "add",
        "Bolt GmbH",
        "--kind",
        "customer",
        "--stage",
        "prospect",
        "--score",
        "40",
    ]);

    let list = home.json(&["customer", "list"]);
    let names: Vec<&str> = array(&list)
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Acme", "Bolt GmbH"]);
    assert_eq!(list[0]["id"], acme.as_str());
    assert_eq!(list[0]["relationship"], "client");
    assert_eq!(list[0]["fields"]["industry"], "retail");
    let key = home.json(&["whoami"])["key"].clone();
    assert_eq!(list[0]["rep"], key);

    let human = home.ok(&["customer", "list"]);
    assert!(
        human.starts_with("ID") && human.contains(&acme[..8]) && human.contains("Bolt GmbH"),
        "{human}"
    );
    let shown = home.json(&["customer", "show", &acme[..6]]);
    assert_eq!(
        (shown["id"].as_str(), shown["email"].as_str()),
        (Some(acme.as_str()), Some("buyer@acme.test"))
    );
    assert!(
        home.ok(&["customer", "show", &acme[..6]])
            .contains("email:")
    );

    let set = home.json(&[
        "customer",
        "set",
        &acme,
        "stage=won",
        "score=90",
        "contact=Jo Park",
        "field.size=50",
    ]);
    assert_eq!(
        (set["stage"].as_str(), set["score"].as_i64()),
        (Some("won"), Some(90))
    );
    assert_eq!(set["contact"], "Jo Park");
    assert_eq!(
        array(&home.json(&["customer", "list", "--stage", "won", "--rep", "me"])).len(),
        1
    );
    assert_eq!(
        array(&home.json(&["customer", "list", "--kind", "customer"])).len(),
        1
    );
    assert_eq!(
        array(&home.json(&["customer", "list", "--tag", "retainer"])).len(),
        1
    );

    assert_eq!(
        array(&home.json(&["customer", "list", "--not-contacted-days", "0"])).len(),
        2
    );
    home.ok(&["customer", "touch", &acme[..6]]);
    let stale = home.json(&["customer", "list", "--not-contacted-days", "0"]);
    assert_eq!(array(&stale).len(), 1, "Acme was contacted today: {stale}");
    assert_eq!(stale[0]["name"], "Bolt GmbH");
}

#[test]
fn tasks_add_list_check_and_done() {
    let home = Home::init("tasks");
    let acme = home.add(&["customer", "add", "Acme", "--kind", "client"]);
    let offer = home.add(&[
        "task",
        "add",
        "Send the offer",
        "--customer",
        &acme[..6],
        "--due",
        "2000-01-31",
        "--assignee",
        "me",
        "--priority",
        "urgent",
        "--tag",
        "sales",
    ]);
    let price = home.add(&["task", "add", "Price it", "--parent", &offer]);
    assert_eq!(
        home.json(&["task", "show", &offer])["subtasks"][0],
        price.as_str()
    );

    let overdue = home.json(&["task", "list", "--overdue"]);
    assert_eq!(array(&overdue).len(), 1);
    assert_eq!(
        (overdue[0]["id"].as_str(), overdue[0]["customer"].as_str()),
        (Some(offer.as_str()), Some(acme.as_str()))
    );
    assert_eq!(
        array(&home.json(&["task", "list", "--assignee", "me", "--customer", &acme])).len(),
        1
    );

    home.ok(&["task", "check", &offer, "Collect the logo"]);
    home.ok(&["task", "check", &offer, "Collect the logo", "--done"]);
    let shown = home.json(&["task", "show", &offer[..6]]);
    assert_eq!(
        shown["checklist"],
        serde_json::json!([{ "item": "Collect the logo", "done": true }])
    );
    assert_eq!(shown["priority"], "urgent");
    assert!(
        home.ok(&["task", "show", &offer])
            .contains("[x] Collect the logo")
    );

    home.ok(&[
        "task",
        "set",
        &price,
        "status=in_progress",
        "due=2999-01-01",
    ]);
    home.ok(&["task", "done", &offer]);
    assert!(array(&home.json(&["task", "list", "--overdue"])).is_empty());
    let done = home.json(&["task", "list", "--status", "done"]);
    assert_eq!(array(&done).len(), 1);
    assert_eq!(done[0]["id"], offer.as_str());
    let human = home.ok(&["task", "list"]);
    assert!(
        human.contains("in_progress") && human.contains("1/1"),
        "{human}"
    );
}

#[test]
fn docs_new_append_show_and_edit() {
    let home = Home::init("docs");
    let acme = home.add(&["customer", "add", "Acme", "--kind", "client"]);
    let doc = home.add(&[
        "doc",
        "new",
        "Buyer portal",
        "--customer",
        &acme,
        "--template",
        "brd",
    ]);
    home.ok(&[
        "doc",
        "append",
        &doc[..6],
        "Launch before the Q3 trade fair.",
    ]);
    let shown = home.json(&["doc", "show", &doc]);
    let body = shown["body"].as_str().unwrap().to_owned();
    assert!(
        body.starts_with("## Scope\n") && body.ends_with("Launch before the Q3 trade fair."),
        "{body}"
    );
    assert_eq!(
        (shown["title"].as_str(), shown["customer"].as_str()),
        (Some("Buyer portal"), Some(acme.as_str()))
    );
    assert_eq!(home.json(&["doc", "list"])[0]["id"], doc.as_str());
    assert!(
        home.ok(&["doc", "show", &doc])
            .contains("## Business drivers")
    );

    if cfg!(unix) {
        let output = home
            .command(&["doc", "edit", &doc])
            .env("EDITOR", "sed -i -e 's/^## Scope$/## Scope of work/'")
            .env_remove("VISUAL")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let edited = home.json(&["doc", "show", &doc])["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(edited, body.replacen("## Scope\n", "## Scope of work\n", 1));
        let output = home
            .command(&["doc", "edit", &doc])
            .env("EDITOR", "true")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&output.stdout).starts_with("no change"));
    }
}

#[test]
fn comments_add_reply_list_and_resolve() {
    let home = Home::init("comments");
    let doc = home.add(&["doc", "new", "Buyer portal"]);
    let question = home.add(&["comment", "add", &doc[..6], "Is the budget final?"]);
    let answer = home.add(&[
        "comment",
        "add",
        &doc,
        "Yes, signed off.",
        "--reply-to",
        &question[..4],
    ]);
    let list = home.json(&["comment", "list", &doc]);
    assert_eq!(array(&list).len(), 2);
    assert_eq!(
        (list[0]["id"].as_str(), list[1]["id"].as_str()),
        (Some(question.as_str()), Some(answer.as_str()))
    );
    assert_eq!(list[1]["reply_to"], question.as_str());
    assert_eq!(list[0]["body"], "Is the budget final?");
    assert_eq!(list[0]["resolved"], false);
    assert!(
        home.ok(&["comment", "list", &doc])
            .contains("↳ Yes, signed off.")
    );

    home.ok(&["comment", "resolve", &doc, &question]);
    assert_eq!(home.json(&["comment", "list", &doc])[0]["resolved"], true);

    let task = home.add(&["task", "add", "Call Acme"]);
    home.ok(&["comment", "add", &task, "Tomorrow at ten."]);
    assert_eq!(array(&home.json(&["comment", "list", &task])).len(), 1);
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let home = Home::init("bad");
    let acme = home.add(&["customer", "add", "Acme", "--kind", "client"]);
    let before = home.json(&["customer", "show", &acme]);

    home.fails(
        &["customer", "show", "zzzz"],
        "no customer with an id starting `zzzz`",
    );
    home.fails(
        &["customer", "set", &acme, "stage=won", "colour=red"],
        "unknown customer field `colour`",
    );
    home.fails(&["customer", "set", &acme, "stage"], "not KEY=VALUE");
    home.fails(
        &["customer", "set", &acme, "acquired=2025-02-30"],
        "has no day 30",
    );
    home.fails(
        &["customer", "set", &acme, "last_contact=yesterday"],
        "YYYY-MM-DD",
    );
    home.fails(
        &["customer", "add", "Bolt", "--kind", "partner"],
        "unknown kind `partner`",
    );
    home.fails(
        &[
            "customer", "add", "Bolt", "--kind", "client", "--field", "size",
        ],
        "--field product=hosting",
    );
    assert_eq!(home.json(&["customer", "show", &acme]), before);
    assert_eq!(array(&home.json(&["customer", "list"])).len(), 1);

    home.fails(
        &["task", "add", "Offer", "--due", "31/01/2025"],
        "YYYY-MM-DD",
    );
    home.fails(
        &["task", "add", "Offer", "--customer", "zzzz"],
        "no customer",
    );
    home.fails(
        &["task", "add", "Offer", "--assignee", "bob"],
        "not a public key",
    );
    home.fails(
        &["doc", "new", "Portal", "--template", "prd"],
        "no template is called `prd`",
    );
    home.fails(
        &["comment", "add", "zzzz", "hello"],
        "no customer, task or doc",
    );
    assert!(array(&home.json(&["task", "list"])).is_empty());
    assert!(array(&home.json(&["doc", "list"])).is_empty());

    let fresh =
        std::env::temp_dir().join(format!("rapport-cli-records-never-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .arg("--home")
        .arg(&fresh)
        .args(["customer", "list"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(!output.status.success() && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("rapport init") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&fresh);
}

#[test]
fn ambiguous_prefixes_ask_for_more() {
    let home = Home::init("ambiguous");
    let mut ids: Vec<String> = Vec::new();
    // 59 ids over 58 base58 characters: two share a first character by then.
    let shared = loop {
        assert!(ids.len() < 59, "pigeonhole");
        let id = home.add(&["task", "add", &format!("Task {}", ids.len())]);
        if let Some(twin) = ids.iter().find(|other| other[..1] == id[..1]) {
            break twin[..1].to_owned();
        }
        ids.push(id);
    };
    home.fails(&["task", "show", &shared], "type more of the id");
    home.fails(&["comment", "add", &shared, "hello"], "type more of the id");
}

#[test]
fn help_teaches_by_example() {
    let home = Home::init("help");
    for group in [
        ["customer", "add"],
        ["customer", "set"],
        ["task", "add"],
        ["task", "list"],
        ["doc", "edit"],
        ["comment", "add"],
    ] {
        let help = home.ok(&[group[0], group[1], "--help"]);
        assert!(
            help.contains("Examples:")
                && help.contains(&format!("rapport {} {}", group[0], group[1])),
            "{help}"
        );
    }
}
