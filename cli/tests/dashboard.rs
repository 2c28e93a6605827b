//! `rapport dashboard` through the built binary, on a replica seeded with
//! customers and tasks in known states, offline (no relay, no workspace).

use rapport_protocol::ids::PublicKey;
use serde_json::{Value, json};

mod common;

use common::Home;

/// Customers and tasks in known states; returns Ann's (this home's) key
/// and Bob's.
fn seed(home: &Home) -> (String, String) {
    let ann = home.json(&["whoami"])["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let bob = PublicKey::from_bytes([2; 32]).to_string();
    for (name, stage, score, last) in [
        ("Acme", "proposal", "80", Some("2025-03-01")),
        ("Bolt", "proposal", "45", Some("2025-01-15")),
        ("Cato", "lead", "10", None),
        ("Dyna", "won", "95", Some("2025-02-08")),
        ("Echo", "lost", "5", None),
    ] {
        let id = home.add(&[
            "customer", "add", name, "--kind", "client", "--stage", stage, "--score", score,
        ]);
        if let Some(last) = last {
            home.ok(&["customer", "set", &id, &format!("last_contact={last}")]);
        }
    }
    let task = |title: &str, due: Option<&str>, who: &[&str], status: &str| {
        let mut args = vec!["task", "add", title];
        if let Some(due) = due {
            args.extend(["--due", due]);
        }
        for person in who {
            args.extend(["--assignee", person]);
        }
        let id = home.add(&args);
        if status != "open" {
            home.ok(&["task", "set", &id, &format!("status={status}")]);
        }
    };
    task("Send offer", Some("2025-03-05"), &["me"], "open");
    task(
        "Draft contract",
        Some("2025-03-20"),
        &["me", &bob],
        "in_progress",
    );
    task("Invoice", Some("2025-02-01"), &[&bob], "done");
    task("Chase payment", Some("2025-02-28"), &[&bob], "blocked");
    task("Plan kickoff", None, &[], "open");
    for score in ["5", "4", "3", "n/a"] {
        let id = home.add(&[
            "task",
            "add",
            "Feedback",
            "--tag",
            "feedback",
            "--field",
            &format!("csat={score}"),
        ]);
        home.ok(&["task", "done", &id]);
    }
    (ann, bob)
}

#[test]
fn figures_match_the_ones_worked_out_by_hand() {
    let home = Home::init("seeded");
    let (ann, bob) = seed(&home);
    let figures = home.json(&["dashboard", "--today", "2025-03-10"]);
    assert_eq!(figures["today"], "2025-03-10");

    // proposal: Acme 80 + Bolt 45 = 125; lead: Cato 10; won: Dyna 95;
    // lost: Echo 5; the other stages are listed empty.
    assert_eq!(
        figures["pipeline"],
        json!([
            { "stage": "lead", "customers": 1, "score": 10 },
            { "stage": "prospect", "customers": 0, "score": 0 },
            { "stage": "proposal", "customers": 2, "score": 125 },
            { "stage": "won", "customers": 1, "score": 95 },
            { "stage": "lost", "customers": 1, "score": 5 },
            { "stage": "active", "customers": 0, "score": 0 },
            { "stage": "churned", "customers": 0, "score": 0 },
        ])
    );

    // Open tasks: Send offer (Ann; due 03-05, 5 days late), Draft contract
    // (Ann and Bob; due 03-20), Chase payment (Bob; blocked, due 02-28, 10
    // days late), Plan kickoff (nobody). Invoice and the four feedback
    // tasks are done. So Ann 2 open 1 overdue, Bob 2 and 1, unassigned 1
    // and 0 (last). Rows are by key; the name is known for Ann only.
    let mut people = vec![
        json!({ "assignee": ann, "name": "Ann Lee", "open": 2, "overdue": 1 }),
        json!({ "assignee": bob, "name": null, "open": 2, "overdue": 1 }),
    ];
    people.sort_by_key(|row| row["assignee"].as_str().unwrap_or_default().to_owned());
    people.push(json!({ "assignee": null, "name": null, "open": 1, "overdue": 0 }));
    assert_eq!(figures["workload"], Value::Array(people));

    let overdue: Vec<(&str, &str, i64, Value)> = figures["overdue"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap_or_default(),
                t["due"].as_str().unwrap_or_default(),
                t["days_overdue"].as_i64().unwrap_or_default(),
                t["assignees"].clone(),
            )
        })
        .collect();
    assert_eq!(
        overdue,
        [
            ("Chase payment", "2025-02-28", 10, json!([bob])),
            ("Send offer", "2025-03-05", 5, json!([ann])),
        ]
    );

    // Cato never contacted (first); Bolt on 01-15: 16 + 28 + 10 = 54 days.
    // Acme (9 days) and Dyna (exactly 30) are recent enough; Echo is lost.
    let stale = &figures["not_contacted"];
    assert_eq!(stale["days"], 30);
    let names: Vec<(&str, Value)> = stale["customers"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["days_since"].clone(),
            )
        })
        .collect();
    assert_eq!(names, [("Cato", Value::Null), ("Bolt", json!(54))]);

    // Scores 5, 4, 3: 12 / 3 = 4.0; "n/a" is unscored.
    assert_eq!(
        figures["csat"],
        json!({ "responses": 3, "sum": 12, "average": 4.0, "unscored": 1 })
    );

    // With 60 days, Bolt (54) is recent enough; with 0, Acme (9) and Dyna
    // (30) are not.
    let names = |days: &str| -> Vec<String> {
        home.json(&["dashboard", "--today", "2025-03-10", "--stale-days", days])
            ["not_contacted"]["customers"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names("60"), ["Cato"]);
    assert_eq!(names("0"), ["Cato", "Bolt", "Dyna", "Acme"]);
}

#[test]
fn people_read_the_same_figures() {
    let home = Home::init("human");
    seed(&home);
    let shown = home.ok(&["dashboard", "--today", "2025-03-10"]);
    for expected in [
        "Dashboard for 2025-03-10",
        "proposal  2          125",
        "Ann Lee (",
        "unassigned",
        "Chase payment",
        "Not contacted for more than 30 days",
        "2025-01-15 (54 days)",
        "never",
        "CSAT 4.00 of 5 from 3 feedback submission(s) (1 without a score 1-5)",
    ] {
        assert!(shown.contains(expected), "`{expected}` not in:\n{shown}");
    }
}

#[test]
fn bad_input_is_one_line() {
    let home = Home::init("bad");
    home.fails(&["dashboard", "--stale-days", "-3"], "--stale-days");
    home.fails(
        &["dashboard", "--stale-days", "soon"],
        "not a number of days",
    );
    home.fails(&["dashboard", "--today", "2025-02-30"], "--today");
    home.fails(&["dashboard", "--today", "tomorrow"], "YYYY-MM-DD");
    // An empty replica has a dashboard of zeros, today's by default.
    let empty = home.json(&["dashboard"]);
    assert_eq!(empty["csat"]["responses"], 0);
    assert_eq!(empty["workload"], json!([]));
}

#[test]
fn an_archived_customer_leaves_lists_and_the_pipeline_and_comes_back() {
    let home = Home::init("archive");
    let acme = home.add(&[
        "customer", "add", "Acme Ltd", "--kind", "client", "--stage", "proposal",
    ]);
    let task = home.add(&["task", "add", "Send the offer", "--due", "2020-01-01"]);
    let proposals = |home: &Home| {
        let figures = home.json(&["dashboard"]);
        figures["pipeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "proposal")
            .map(|s| s["customers"].as_u64().unwrap())
            .unwrap()
    };
    let overdue = |home: &Home| {
        home.json(&["dashboard"])["overdue"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((proposals(&home), overdue(&home)), (1, 1));

    home.ok(&["customer", "archive", &acme[..8]]);
    home.ok(&["task", "archive", &task[..8]]);
    assert_eq!(
        (proposals(&home), overdue(&home)),
        (0, 0),
        "archived records left the dashboard"
    );
    assert!(
        home.json(&["customer", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(home.json(&["task", "list"]).as_array().unwrap().is_empty());
    let archived = home.json(&["customer", "list", "--archived"]);
    assert_eq!(archived[0]["id"], acme.as_str(), "{archived}");
    // Still there, whole: shown and edited by id.
    home.ok(&["customer", "set", &acme[..8], "stage=won"]);

    home.ok(&["customer", "unarchive", &acme[..8]]);
    home.ok(&["task", "unarchive", &task[..8]]);
    assert_eq!(
        home.json(&["customer", "list"]).as_array().unwrap().len(),
        1
    );
    assert_eq!(overdue(&home), 1);
    assert_eq!(home.json(&["customer", "show", &acme[..8]])["stage"], "won");
}
