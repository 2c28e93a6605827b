//! A workspace's storage quota through the built binary: writes past
//! `--max-workspace-bytes` are refused, `rapport sync` says why, and
//! `/metrics` names the workspace's size.

mod common;

use std::io::{Read, Write};

use common::{Home, Relay};

/// The body of `GET /metrics` from the relay at `addr`.
fn metrics(addr: &str) -> String {
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    socket.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_workspace_past_its_quota_refuses_changes_and_the_cli_says_why() {
    let relay = Relay::start_with(&["--listen", "127.0.0.1:0", "--max-workspace-bytes", "20000"]);
    let home = Home::new("quota");
    home.ok(&["init", "--name", "Ann Lee"]);
    let created = home.json(&["workspace", "create", "Acme", "--relay", &relay.url]);
    let workspace = created["id"].as_str().unwrap().to_owned();
    let doc = home.add(&["doc", "new", "Brief"]);
    // Text that does not compress away: about 60 KB of it (30 KB as the
    // saved document the replica sends and the relay keeps).
    let filler: String = (0..6_000u32)
        .map(|n| format!("{:09x} ", n.wrapping_mul(2_654_435_761)))
        .collect();
    home.ok(&["doc", "append", &doc[..8], &filler]);
    let first = home.ok(&["sync"]);
    assert!(!first.contains("refused"), "{first}");

    let sizes = metrics(&relay.addr);
    let line = sizes
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "rapport_workspace_bytes{{workspace=\"{workspace}\"}}"
            ))
        })
        .unwrap_or_else(|| panic!("no size for {workspace}:\n{sizes}"));
    let bytes: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes > 20_000, "{line}");

    // Past the quota: the next change is refused, and said to be.
    let task = home.add(&["task", "add", "Send the offer"]);
    let second = home.ok(&["sync"]);
    assert!(
        second.contains("refused") && second.contains("storage quota"),
        "{second}"
    );
    let _ = task;
}
