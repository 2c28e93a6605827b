//! A relay on the internet: TLS it serves itself with a certificate from
//! a private CA (made here with rcgen), `--ca` on the client side, a new
//! certificate taken on SIGHUP without dropping a connection, and
//! `--public-url` naming the relay in every link. Every step through the
//! built binaries.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Home, Relay};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A certificate authority, and a server certificate for 127.0.0.1 and
/// localhost it signed, written as PEM files into `dir` with `prefix`:
/// returns (CA, server chain, server key).
fn certificates(dir: &Path, prefix: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("rapport test CA {prefix}"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let paths = (
        dir.join(format!("{prefix}-ca.pem")),
        dir.join(format!("{prefix}-chain.pem")),
        dir.join(format!("{prefix}-key.pem")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_relay_serving_tls_is_reached_over_https_and_wss_and_takes_a_new_certificate_on_sighup() {
    let certs = Home::new("tls-certs");
    let (ca, chain, key) = certificates(certs.path(), "first");
    // The files the relay reads; replaced below, as a renewal does.
    let (served_chain, served_key) = (certs.path().join("chain.pem"), certs.path().join("key.pem"));
    std::fs::copy(&chain, &served_chain).unwrap();
    std::fs::copy(&key, &served_key).unwrap();
    let relay = Relay::start_with(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        path(&served_chain),
        "--tls-key",
        path(&served_key),
    ]);
    let https = format!("https://{}", relay.addr);

    let staff = Home::init("tls-staff");
    // Without the CA the certificate is not trusted, and the error says so.
    let refused = staff.error(&["workspace", "create", "Acme", "--relay", &https]);
    assert!(
        refused.contains("certificate") && refused.contains("--ca"),
        "{refused}"
    );

    let ca = path(&ca);
    let created = staff.json(&["--ca", ca, "workspace", "create", "Acme", "--relay", &https]);
    let workspace = created["id"].as_str().unwrap().to_owned();
    let customer = staff.add(&[
        "--ca", ca, "customer", "add", "Acme Ltd", "--kind", "client",
    ]);
    staff.ok(&["--ca", ca, "sync"]);
    let invite = staff.json(&["--ca", ca, "invite", "create", "--role", "staff"]);
    let link = invite["link"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{https}/join#")), "{link}");

    let colleague = Home::init("tls-colleague");
    let joined = colleague.json(&["--ca", ca, "join", &link]);
    assert_eq!(joined["workspace"], workspace.as_str());
    colleague.ok(&["--ca", ca, "sync"]);
    let seen = colleague.json(&["customer", "show", &customer[..8]]);
    assert_eq!(seen["name"], "Acme Ltd", "{seen}");

    // A watcher stays connected over wss while the certificate changes.
    let watcher = colleague
        .command(&["--ca", ca, "sync", "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    // Renewal: a certificate from another CA, then SIGHUP.
    let (new_ca, new_chain, new_key) = certificates(certs.path(), "second");
    std::fs::copy(&new_chain, &served_chain).unwrap();
    std::fs::copy(&new_key, &served_key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &relay.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // New connections get the new certificate: trusted with the new CA,
    // refused with the old one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !staff.run(&["--ca", path(&new_ca), "sync"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "the relay never served the new certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let old = staff.run(&["--ca", ca, "sync"]);
    let said = String::from_utf8_lossy(&old.stderr);
    assert!(
        !old.status.success() && said.contains("certificate"),
        "{said}"
    );

    // The watcher's connection, made before, still carries changes: its
    // reconnect would trust only the old CA, which no longer works.
    staff.ok(&[
        "--ca",
        path(&new_ca),
        "customer",
        "set",
        &customer[..8],
        "name=Acme Group",
    ]);
    staff.ok(&["--ca", path(&new_ca), "sync"]);
    // The replica is the watcher's while it runs: give the change a moment
    // to arrive, stop the watcher as Ctrl-C does, then read the replica.
    std::thread::sleep(Duration::from_secs(3));
    let interrupted = Command::new("kill")
        .args(["-INT", &watcher.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let watched = watcher.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&watched.stderr);
    assert!(
        !said.contains("disconnected"),
        "the watcher lost its connection:\n{said}"
    );
    let seen = colleague.json(&["customer", "show", &customer[..8]]);
    assert_eq!(
        seen["name"], "Acme Group",
        "the watcher stopped receiving: {seen}"
    );
}

#[test]
fn a_public_url_names_the_relay_in_links_and_info() {
    // A port to give --public-url before the relay starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://localhost:{port}");
    let relay = Relay::start_with(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--public-url",
        &format!("{public}/"),
    ]);
    let staff = Home::init("public-staff");
    // Typed as the listening address; kept as the public one.
    staff.ok(&[
        "workspace",
        "create",
        "Acme",
        "--relay",
        &format!("http://{}", relay.addr),
    ]);
    let listed = staff.json(&["workspace", "list"]);
    assert_eq!(listed[0]["relay"], public.as_str(), "{listed}");
    let invite = staff.json(&["invite", "create", "--role", "staff"]);
    let link = invite["link"].as_str().unwrap();
    assert!(link.starts_with(&format!("{public}/join#")), "{link}");
    assert!(!link.contains("127.0.0.1"), "{link}");
}

#[test]
fn a_certificate_that_cannot_be_served_stops_the_start_with_the_reason() {
    let certs = Home::new("tls-bad");
    let (_, chain, _) = certificates(certs.path(), "one");
    let (_, _, other_key) = certificates(certs.path(), "two");
    let data = Home::new("tls-bad-data");
    let missing = certs.path().join("missing.pem");
    for (cert, key, expected) in [
        (&missing, &other_key, "cannot read"),
        (&chain, &chain, "no PEM private key"),
        (&other_key, &other_key, "no PEM certificate"),
        (&chain, &other_key, "do not go together"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data",
                path(data.path()),
            ])
            .args(["--tls-cert", path(cert), "--tls-key", path(key)])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "started with {cert:?} and {key:?}"
        );
        assert!(said.contains(expected), "expected `{expected}` in: {said}");
    }
}

#[test]
fn rapport_serve_reads_a_config_file() {
    let dir = Home::new("serve-config");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmax-connections = 7\n").unwrap();
    // `listen` comes from the file alone; the relay serves there.
    let relay = Relay::start_with(&["--config", path(&file)]);
    assert!(
        !relay.addr.ends_with(":3030"),
        "the default address: {}",
        relay.addr
    );
    let staff = Home::init("serve-config-staff");
    staff.ok(&["workspace", "create", "Acme", "--relay", &relay.url]);
}
