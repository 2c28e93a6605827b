use super::*;
use std::path::PathBuf;
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let path =
            std::env::temp_dir().join(format!("rapport-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WAIT: Duration = Duration::from_secs(10);

fn sorted(mut heads: Vec<String>) -> Vec<String> {
    heads.sort();
    heads
}

#[test]
fn two_js_peers_converge_through_the_js_sync_server() -> Result<()> {
    let dir = TempDir::new("js-sync-server")?;
    let server = JsSyncServer::start(&dir.0)?;
    let mut a = JsPeer::start_with_peer_id(&server.url(), "interop-a")?;
    let mut b = JsPeer::start(&server.url())?;
    assert_eq!(a.peer_id(), "interop-a");
    assert_eq!(a.errors()?, Vec::<String>::new());
    assert!(
        a.peers()?.iter().any(|p| p.starts_with("storage-server-")),
        "A should be connected to the sync server"
    );

    let initial = json!({"customers": {}, "notes": "Kickoff"});
    let url = a.create(initial.clone())?;
    assert!(url.starts_with("automerge:"), "{url}");
    a.flush(WAIT)?;
    assert_eq!(b.find(&url)?, initial);

    // Edits on both sides, without waiting for each other (B may or may
    // not have A's edits yet). The splice positions hold either way: A
    // appends before B edits, B inserts at the front.
    a.put(&url, &["customers", "c1", "name"], json!("Acme"))?;
    a.splice(&url, &["notes"], 7, 0, " call")?;
    b.put(&url, &["customers", "c2", "name"], json!("Globex"))?;
    b.splice(&url, &["notes"], 0, 0, "Q3 ")?;

    a.wait_for(&url, &["customers", "c2", "name"], json!("Globex"), WAIT)?;
    b.wait_for(&url, &["customers", "c1", "name"], json!("Acme"), WAIT)?;
    a.wait_for(&url, &["notes"], json!("Q3 Kickoff call"), WAIT)?;
    b.wait_for(&url, &["notes"], json!("Q3 Kickoff call"), WAIT)?;

    let (ra, rb) = (a.read(&url)?, b.read(&url)?);
    let expected = json!({
        "customers": {"c1": {"name": "Acme"}, "c2": {"name": "Globex"}},
        "notes": "Q3 Kickoff call",
    });
    assert_eq!(ra.doc, expected);
    assert_eq!(rb.doc, expected);
    assert!(!ra.heads.is_empty());
    assert!(ra.heads.iter().all(|h| h.len() == 64), "{:?}", ra.heads);
    assert_eq!(sorted(ra.heads), sorted(rb.heads));

    // The JS error text comes through.
    let err = a
        .wait_for(&url, &["notes"], json!("never"), Duration::from_millis(200))
        .expect_err("the value never appears");
    assert!(format!("{err:#}").contains("timeout"), "{err:#}");

    // The server stored the document: a restarted server still serves it.
    a.flush(WAIT)?;
    b.flush(WAIT)?;
    drop((a, b));
    server.stop()?;
    let server = JsSyncServer::start(&dir.0)?;
    let mut c = JsPeer::start(&server.url())?;
    assert_eq!(c.find(&url)?, expected);
    Ok(())
}

#[test]
fn finding_an_unknown_document_reports_unavailable() -> Result<()> {
    let dir = TempDir::new("js-sync-server-unavailable")?;
    let server = JsSyncServer::start(&dir.0)?;
    let mut peer = JsPeer::start(&server.url())?;
    let started = Instant::now();
    // A valid URL (bs58check of 16 bytes) that nobody has.
    let err = peer
        .find("automerge:2j9knpCseyhnK8izDmLpGP5WMdZQ")
        .expect_err("nobody has this document");
    assert!(format!("{err:#}").contains("unavailable"), "{err:#}");
    assert!(
        started.elapsed() < DEFAULT_WAIT,
        "unavailable should be fast"
    );
    Ok(())
}

#[test]
fn a_refused_upgrade_fails_start_with_the_status_and_keeps_the_query() -> Result<()> {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = thread::spawn(move || -> Result<String> {
        let (stream, _) = listener.accept()?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut line = String::new();
        while reader.read_line(&mut line)? > 2 {
            line.clear();
        }
        (&stream).write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")?;
        Ok(request_line)
    });
    let err = JsPeer::start(&format!("ws://127.0.0.1:{port}/sync?token=abc.def-ghi"))
        .expect_err("the upgrade is refused");
    assert!(
        format!("{err:#}").contains("Unexpected server response: 401"),
        "{err:#}"
    );
    let request_line = server
        .join()
        .map_err(|_| anyhow::anyhow!("server panicked"))??;
    assert!(
        request_line.starts_with("GET /sync?token=abc.def-ghi HTTP/1.1"),
        "{request_line:?}"
    );
    Ok(())
}

#[test]
fn a_peer_that_cannot_connect_fails_to_start() -> Result<()> {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let options = JsPeerOptions {
        connect_timeout: Duration::from_secs(2),
        ..JsPeerOptions::default()
    };
    let err = JsPeer::start_with(&format!("ws://127.0.0.1:{port}"), &options)
        .expect_err("nothing listens");
    assert!(format!("{err:#}").contains("no peer answered"), "{err:#}");
    Ok(())
}
