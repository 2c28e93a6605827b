//! Deleting and erasing records through the built binary: what goes is
//! listed and confirmed, the relay refuses it from then on, and every
//! replica that syncs drops its copy; an erased customer's email address
//! is afterwards nowhere in the relay's files or a replica's.

mod common;

use std::path::Path;

use common::{Home, Relay};

/// An owner and a second staff member, both synced, in one workspace.
fn team(relay: &Relay, name: &str) -> (Home, Home) {
    let owner = Home::new(&format!("{name}-owner"));
    let staff = Home::new(&format!("{name}-staff"));
    owner.ok(&["init", "--name", "Olga Owner"]);
    staff.ok(&["init", "--name", "Sam Staff"]);
    owner.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let invite = owner.json(&["invite", "create", "--role", "staff"]);
    staff.ok(&["join", invite["link"].as_str().unwrap()]);
    (owner, staff)
}

/// How many times `needle` occurs in the files under `folder`.
fn occurrences(folder: &Path, needle: &[u8]) -> usize {
    let mut found = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found += occurrences(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            found += bytes.windows(needle.len()).filter(|w| *w == needle).count();
        }
    }
    found
}

#[test]
fn a_deleted_record_is_refused_by_the_relay_and_leaves_every_replica() {
    let relay = Relay::start();
    let (owner, staff) = team(&relay, "delete");
    let doomed = owner.add(&["customer", "add", "Initech", "--kind", "customer"]);
    let kept = owner.add(&["customer", "add", "Globex", "--kind", "client"]);
    owner.ok(&["comment", "add", &doomed, "Duplicate of Globex?"]);
    owner.ok(&["sync"]);
    staff.ok(&["sync"]);
    assert!(
        staff
            .json(&["customer", "list"])
            .to_string()
            .contains(&doomed)
    );
    // A copy of the staff replica from before the deletion, with an edit
    // the relay never saw.
    staff.ok(&["customer", "set", &doomed[..8], "score=70"]);
    let saved = Home::new("delete-saved");
    std::fs::create_dir_all(saved.path()).unwrap();
    let backup = saved.path().join("staff.backup");
    staff.ok(&["backup", "--to", backup.to_str().unwrap()]);

    // Without a terminal to ask on, nothing goes without --yes.
    owner.fails(&["customer", "delete", &doomed[..8]], "--yes");
    assert!(
        owner
            .json(&["customer", "list"])
            .to_string()
            .contains(&doomed)
    );
    // Staff may not delete.
    staff.fails(&["customer", "delete", &kept[..8], "--yes"], "Admin");

    let deleted = owner.json(&["customer", "delete", &doomed[..8], "--yes"]);
    let removed = deleted["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "the record and its thread: {deleted}");
    assert!(deleted.to_string().contains(&doomed), "{deleted}");
    let listed = owner.json(&["customer", "list"]).to_string();
    assert!(
        !listed.contains(&doomed) && listed.contains(&kept),
        "{listed}"
    );

    staff.ok(&["sync"]);
    let seen = staff.json(&["customer", "list"]).to_string();
    assert!(!seen.contains(&doomed) && seen.contains(&kept), "{seen}");
    staff.fails(&["customer", "show", &doomed], "no customer");

    // The old copy comes back and offers the record with its edit: the
    // relay refuses it and the replica drops it again.
    staff.ok(&[
        "backup",
        "--restore-from",
        backup.to_str().unwrap(),
        "--force",
    ]);
    assert!(
        staff
            .json(&["customer", "list"])
            .to_string()
            .contains(&doomed)
    );
    staff.ok(&["sync"]);
    assert!(
        !staff
            .json(&["customer", "list"])
            .to_string()
            .contains(&doomed)
    );
    // And nobody who joins later ever sees it.
    let late = Home::new("delete-late");
    late.ok(&["init", "--name", "Lee Late"]);
    let invite = owner.json(&["invite", "create", "--role", "staff"]);
    late.ok(&["join", invite["link"].as_str().unwrap()]);
    late.ok(&["sync"]);
    let theirs = late.json(&["customer", "list"]).to_string();
    assert!(
        !theirs.contains(&doomed) && theirs.contains(&kept),
        "{theirs}"
    );
}

#[test]
fn an_erased_customer_leaves_no_bytes_on_the_relay_or_a_replica() {
    let relay = Relay::start();
    let (owner, staff) = team(&relay, "erase");
    let email = "jo.erase-me-7431@example.org";
    let customer = owner.add(&[
        "customer", "add", "Jo Doe", "--kind", "client", "--email", email,
    ]);
    let task = owner.add(&["task", "add", "Call Jo back", "--customer", &customer[..8]]);
    let other = owner.add(&["task", "add", "Quarterly review"]);
    owner.ok(&[
        "comment",
        "add",
        &task[..8],
        &format!("Jo asked to write to {email}"),
    ]);
    // Enough writes that the relay compacts the customer into a snapshot.
    for score in 0..40 {
        owner.ok(&["customer", "set", &customer[..8], &format!("score={score}")]);
    }
    owner.ok(&["sync"]);
    staff.ok(&["sync"]);
    let needle = email.as_bytes();
    // The check below can fail: before the erasure the address is there.
    assert!(occurrences(relay.data(), needle) > 0);
    assert!(occurrences(staff.path(), needle) > 0);

    owner.fails(&["customer", "erase", "zzzz", "--yes"], "no customer");
    let erased = owner.json(&["customer", "erase", &customer[..8], "--yes"]);
    let removed = erased["removed"].to_string();
    // The customer, the task about it and the thread on the task.
    assert_eq!(erased["removed"].as_array().unwrap().len(), 3, "{erased}");
    assert!(
        removed.contains(&customer) && removed.contains(&task),
        "{erased}"
    );
    assert!(!removed.contains(&other), "{erased}");
    staff.ok(&["sync"]);

    assert_eq!(occurrences(relay.data(), needle), 0, "in the relay's files");
    assert_eq!(
        occurrences(owner.path(), needle),
        0,
        "in the owner's replica"
    );
    assert_eq!(occurrences(staff.path(), needle), 0, "in the staff replica");
    let tasks = staff.json(&["task", "list"]).to_string();
    assert!(tasks.contains(&other) && !tasks.contains(&task), "{tasks}");
    // The audit log says an erasure happened, not whose.
    let audit = owner.ok(&["audit"]);
    assert!(audit.contains("documents-erased"), "{audit}");
    assert!(
        !audit.contains(email) && !audit.contains("Jo Doe"),
        "{audit}"
    );
}
