//! Recurring tasks through the built binary: `task add --repeat`, `task
//! done` and `task set status=done` make the next occurrence, once; bad
//! rules are one-line errors that change nothing.

use serde_json::Value;

mod common;

use common::Home;

impl Home {
    /// Adds a task; its full id.
    fn add_task(&self, args: &[&str]) -> String {
        let added = self.json(&[&["task", "add"], args].concat());
        added["id"].as_str().expect("add prints an id").to_owned()
    }

    /// Every task, from `task list --json`.
    fn tasks(&self) -> Vec<Value> {
        self.json(&["task", "list"])
            .as_array()
            .expect("a list is an array")
            .clone()
    }

    /// The tasks whose `previous` is `id`.
    fn after(&self, id: &str) -> Vec<Value> {
        self.tasks()
            .into_iter()
            .filter(|task| task["previous"] == id)
            .collect()
    }
}

#[test]
fn a_weekly_task_done_makes_its_next_one_once() {
    let home = Home::init("weekly");
    let first = home.add_task(&[
        "Weekly invoice",
        "--due",
        "2025-01-06",
        "--repeat",
        "Every 1 Week",
        "--tag",
        "billing",
    ]);
    let shown = home.json(&["task", "show", &first]);
    assert_eq!(shown["repeat"], "weekly", "stored in canonical form");

    let done = home.json(&["task", "done", &first]);
    assert_eq!(done["status"], "done");
    assert_eq!(done["next"]["due"], "2025-01-13");
    assert_eq!(done["next"]["created"], true);
    let second = done["next"]["id"].as_str().expect("the next id").to_owned();

    let tasks = home.tasks();
    assert_eq!(tasks.len(), 2, "{tasks:#?}");
    let next = home.after(&first);
    assert_eq!(next.len(), 1, "{next:#?}");
    let next = &next[0];
    assert_eq!(next["id"], second.as_str());
    assert_eq!(next["title"], "Weekly invoice");
    assert_eq!(next["status"], "open");
    assert_eq!(next["due"], "2025-01-13");
    assert_eq!(next["repeat"], "weekly");
    assert_eq!(next["tags"], serde_json::json!(["billing"]));
    assert_eq!(next["series"], first.as_str());

    // Done again: nothing new, and it says so.
    let again = home.json(&["task", "done", &first]);
    assert_eq!(again["next"]["id"], second.as_str());
    assert_eq!(again["next"]["created"], false);
    assert_eq!(home.tasks().len(), 2);

    // Finishing the second through `task set` makes the third.
    let set = home.json(&["task", "set", &second[..8], "status=done"]);
    assert_eq!(set["next"]["due"], "2025-01-20");
    let third = home.after(&second);
    assert_eq!(third.len(), 1, "{third:#?}");
    assert_eq!(third[0]["series"], first.as_str());
    assert_eq!(home.tasks().len(), 3);

    // People see where the next one went.
    let human = home.ok(&["task", "done", &third[0]["id"].as_str().unwrap()[..8]]);
    assert!(
        human.contains("next occurrence added") && human.contains("2025-01-27"),
        "{human}"
    );
}

#[test]
fn monthly_from_the_31st_comes_back_to_the_31st() {
    let home = Home::init("monthly");
    let first = home.add_task(&[
        "Monthly report",
        "--due",
        "2025-01-31",
        "--repeat",
        "monthly",
    ]);
    let second = home.json(&["task", "done", &first])["next"].clone();
    assert_eq!(second["due"], "2025-02-28");
    let third = home.json(&["task", "done", second["id"].as_str().unwrap()])["next"].clone();
    assert_eq!(third["due"], "2025-03-31");
}

#[test]
fn a_task_without_repeat_or_due_date() {
    let home = Home::init("plain");
    let once = home.add_task(&["Once"]);
    let done = home.json(&["task", "done", &once]);
    assert_eq!(done["next"], Value::Null);
    assert_eq!(home.tasks().len(), 1);

    // No due date: the next one is due a day after today.
    let daily = home.add_task(&["Water the plants", "--repeat", "daily"]);
    let next = home.json(&["task", "done", &daily])["next"].clone();
    let due = next["due"].as_str().expect("a due date");
    assert!(due.len() == 10 && due > "2025-01-01", "{due}");
}

#[test]
fn bad_repeat_rules_are_one_line_errors_that_change_nothing() {
    let home = Home::init("bad");
    home.fails(
        &["task", "add", "X", "--repeat", "fortnightly"],
        "--repeat: `fortnightly` is not a repeat rule: use daily, weekly, monthly",
    );
    home.fails(
        &["task", "add", "X", "--repeat", "every 0 weeks"],
        "`0` is not a count from 1 to 999",
    );
    home.fails(
        &["task", "add", "X", "--repeat", "every mon,funday"],
        "`funday` is not a day of the week",
    );
    home.fails(
        &["task", "add", "X", "--repeat", ""],
        "the repeat rule is empty",
    );
    assert!(home.tasks().is_empty(), "nothing was added");

    let id = home.add_task(&["Y", "--repeat", "every mon, thu"]);
    assert_eq!(home.json(&["task", "show", &id])["repeat"], "every mon,thu");
    home.fails(
        &["task", "set", &id, "repeat=every 2 eons"],
        "repeat: `every 2 eons`: `eons` is not a unit",
    );
    assert_eq!(home.json(&["task", "show", &id])["repeat"], "every mon,thu");
    home.ok(&["task", "set", &id, "repeat="]);
    assert_eq!(home.json(&["task", "show", &id])["repeat"], Value::Null);
}
