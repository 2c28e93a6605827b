//! `rapport history` and `rapport restore` through the built binary: two
//! people edit one customer record through a relay on 127.0.0.1:0, and each
//! change names the person who made it, on both replicas.

use serde_json::{Value, json};

mod common;

use common::{Home, Relay};

/// Each change of `history` as (author key, author name, fields).
fn authors(history: &Value) -> Vec<(Value, Value, Value)> {
    history
        .as_array()
        .expect("a list of changes")
        .iter()
        .map(|c| {
            (
                c["author"]["key"].clone(),
                c["author"]["name"].clone(),
                c["fields"].clone(),
            )
        })
        .collect()
}

fn hashes(history: &Value) -> Vec<String> {
    history
        .as_array()
        .expect("a list of changes")
        .iter()
        .map(|c| c["hash"].as_str().expect("a hash").to_owned())
        .collect()
}

#[test]
fn history_names_each_member_and_restore_is_a_new_change() {
    let relay = Relay::start();
    let ann = Home::new("ann");
    let bob = Home::new("bob");
    ann.ok(&["init", "--name", "Ann Lee"]);
    bob.ok(&["init", "--name", "Bob Ray"]);
    let key = |home: &Home| home.json(&["whoami"])["key"].clone();
    let (ann_key, bob_key) = (key(&ann), key(&bob));

    ann.ok(&[
        "workspace",
        "create",
        "Acme projects",
        "--relay",
        &relay.url,
    ]);
    let added = ann.json(&[
        "customer", "add", "Acme", "--kind", "client", "--stage", "lead", "--score", "10",
    ]);
    let acme = added["id"].as_str().expect("an id").to_owned();
    ann.ok(&["sync"]);
    let invite = ann.json(&["invite", "create", "--role", "staff"]);
    bob.ok(&["join", invite["link"].as_str().expect("a link")]);
    bob.ok(&["sync"]);

    // Bob moves the customer on; Ann, after syncing, closes the deal.
    bob.ok(&["customer", "set", &acme[..8], "stage=proposal", "score=40"]);
    bob.ok(&["sync"]);
    ann.ok(&["sync"]);
    ann.ok(&["customer", "set", &acme[..8], "stage=won"]);
    ann.ok(&["sync"]);
    bob.ok(&["sync"]);

    // Both replicas tell the same story, with each member's name as they
    // gave it (on `init`) to the relay when they created or joined.
    let theirs = bob.json(&["history", &acme]);
    let ours = ann.json(&["history", &acme]);
    assert_eq!(hashes(&ours), hashes(&theirs));
    let created = ours[0]["fields"].clone();
    assert!(
        created
            .as_array()
            .is_some_and(|f| f.contains(&json!("name")))
    );
    assert_eq!(
        authors(&ours),
        [
            (ann_key.clone(), json!("Ann Lee"), created.clone()),
            (bob_key.clone(), json!("Bob Ray"), json!(["score", "stage"])),
            (ann_key.clone(), json!("Ann Lee"), json!(["stage"])),
        ]
    );
    assert_eq!(
        authors(&theirs),
        [
            (ann_key.clone(), json!("Ann Lee"), created),
            (bob_key.clone(), json!("Bob Ray"), json!(["score", "stage"])),
            (ann_key.clone(), json!("Ann Lee"), json!(["stage"])),
        ]
    );
    assert!(
        ours.as_array()
            .is_some_and(|all| all.iter().all(|c| c["time"].is_i64())),
        "every change made here carries a time: {ours}"
    );
    let shown = ann.ok(&["history", &acme[..8]]);
    assert!(shown.contains("Ann Lee ("), "{shown}");
    let bob_short: String = bob_key
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(8)
        .collect();
    assert!(shown.contains(&format!("Bob Ray ({bob_short})")), "{shown}");

    // The stage as of each change, and who set it.
    let stage = ann.json(&["history", &acme, "--field", "stage"]);
    let values: Vec<(Value, Value)> = stage
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| (c["author"]["key"].clone(), c["value"].clone()))
        .collect();
    assert_eq!(
        values,
        [
            (ann_key.clone(), json!("lead")),
            (bob_key.clone(), json!("proposal")),
            (ann_key.clone(), json!("won")),
        ]
    );

    // Ann puts back Bob's stage, by the short hash history prints.
    let bobs: String = stage[1]["hash"]
        .as_str()
        .expect("a hash")
        .chars()
        .take(12)
        .collect();
    let restored = ann.json(&["restore", &acme[..8], "--field", "stage", "--to", &bobs]);
    assert_eq!(restored["value"], "proposal");
    assert_eq!(restored["from"], stage[1]["hash"]);
    let change = restored["change"].clone();
    assert!(change.is_string(), "{restored}");
    assert_eq!(ann.json(&["customer", "show", &acme])["stage"], "proposal");
    // Bob's score stays: only the stage was restored.
    assert_eq!(ann.json(&["customer", "show", &acme])["score"], 40);

    ann.ok(&["sync"]);
    bob.ok(&["sync"]);
    assert_eq!(bob.json(&["customer", "show", &acme])["stage"], "proposal");
    let theirs = bob.json(&["history", &acme, "--field", "stage"]);
    let last = theirs
        .as_array()
        .and_then(|all| all.last())
        .expect("a change");
    assert_eq!(
        (&last["hash"], &last["author"]["key"], &last["value"]),
        (&change, &ann_key, &json!("proposal"))
    );
    assert_eq!(theirs.as_array().map(Vec::len), Some(4));

    // Bad input: one line, nothing written.
    let before = hashes(&ann.json(&["history", &acme]));
    ann.fails(&["history", "zzzz"], "no record with an id starting `zzzz`");
    ann.fails(
        &["history", &acme, "--field", "colour"],
        "no field `colour`",
    );
    let unused = (0..=255u8)
        .map(|n| format!("{n:02x}"))
        .find(|p| before.iter().all(|h| !h.starts_with(p.as_str())))
        .expect("5 changes leave most two-digit prefixes unused");
    ann.fails(
        &["restore", &acme, "--field", "stage", "--to", &unused],
        &format!("no change starting `{unused}`"),
    );
    ann.fails(
        &["restore", &acme, "--field", "colour", "--to", &bobs],
        "no field `colour`",
    );
    ann.fails(
        &["restore", &acme, "--field", "kind", "--to", &bobs],
        "cannot be restored",
    );
    assert_eq!(hashes(&ann.json(&["history", &acme])), before);
}
