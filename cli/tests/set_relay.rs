//! `rapport workspace set-relay URL[,URL…]` through the built binary: a
//! workspace kept before lists (one `relay` URL) still reads; a bad address
//! or another relay's changes nothing; with a dead address first, `rapport
//! sync` moves on to the relay that answers, says so, and starts from it
//! next time.

mod common;

use common::{Home, Relay, texts};

/// The home's settings file, as bytes.
fn settings(home: &Home) -> Vec<u8> {
    std::fs::read(home.path().join("settings.json")).expect("settings.json")
}

#[test]
fn a_list_of_addresses_syncs_through_the_one_that_answers() {
    let relay = Relay::start();
    let other = Relay::start();
    let home = Home::init("set-relay");
    home.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let base = format!("http://{}", relay.addr);

    // Settings as kept before lists: one URL under `relay`.
    let text = String::from_utf8(settings(&home)).expect("utf-8");
    let old = text.replace(
        &format!("\"relays\": [\n        \"{base}\"\n      ]"),
        &format!("\"relay\": \"{base}\""),
    );
    assert_ne!(old, text, "settings.json did not hold the list as expected");
    std::fs::write(home.path().join("settings.json"), old).expect("write");
    let listed = home.json(&["workspace", "list"]);
    assert_eq!(listed[0]["relays"], serde_json::json!([base]));
    assert_eq!(listed[0]["relay"], base);

    // A bad address, or another relay, changes nothing.
    let before = settings(&home);
    home.fails(
        &["workspace", "set-relay", &format!("{base},relay.example")],
        "address 2",
    );
    home.fails(
        &["workspace", "set-relay", &format!("{base},{}", other.url)],
        "not this workspace's relay",
    );
    assert_eq!(
        settings(&home),
        before,
        "a failed set-relay changed settings"
    );

    // A port nothing listens on, first.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let list = format!("http://{dead},{}", relay.url);
    let output = home.run(&["workspace", "set-relay", &list]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("does not answer now"), "{stderr}");
    let listed = home.json(&["workspace", "list"]);
    assert_eq!(
        listed[0]["relays"],
        serde_json::json!([format!("http://{dead}"), base])
    );

    // A record made meanwhile goes into the workspace and syncs through
    // the relay that answers.
    home.ok(&["customer", "add", "Acme Ltd", "--kind", "client"]);
    let output = home.run(&["--json", "sync"]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let synced: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON value");
    assert_eq!(synced["relay"], base, "{stdout}");
    assert!(synced["documents"].as_u64() >= Some(1), "{stdout}");
    let output = home.run(&["sync"]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("in sync with {base}")), "{stdout}");
    assert!(
        !stderr.contains(&dead.to_string()),
        "the second sync tried the dead address first:\n{stderr}"
    );
    assert!(
        stderr.contains(&relay.addr),
        "no progress names the relay:\n{stderr}"
    );
}
