//! Real automerge-repo 2.5.6 peers and servers, driven from Rust tests.
//!
//! - [`JsSyncServer`] runs `tests/js/sync-server.mjs`: the reference JS sync
//!   server, set up like the official automerge-repo example (`ws` server,
//!   `NodeWSServerAdapter`, `NodeFSStorageAdapter`, `sharePolicy: false`),
//!   on `127.0.0.1` and a free port.
//! - [`JsPeer`] runs `tests/js/peer.mjs`: a storage-less `Repo` with a
//!   `WebSocketClientAdapter` on a given URL (query string such as
//!   `?token=…` passed unchanged), scripted with JSON commands over
//!   stdin/stdout. The protocol is documented at the top of `peer.mjs`; the
//!   methods here ([`JsPeer::create`], [`JsPeer::find`], …) wrap it, and
//!   [`JsPeer::request`] sends any command.
//!
//! Both are [`NodeChild`]ren: killed when their Rust value is dropped,
//! gone by themselves when their stdin closes, their stderr collected (see
//! [`JsPeer::stderr`]) and included in errors; set `RAPPORT_JS_LOG=1` to
//! also echo it to the test's stderr as it comes.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::node::NodeChild;

/// How long a child may take to print `LISTENING`/`READY`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The `timeoutMs` given to commands that wait (find, waitFor, flush) when
/// the caller does not choose one.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Starts `node SCRIPT ARGS…` in `tests/js`, installing its packages first
/// if needed.
fn spawn(script: &str, args: &[&str]) -> Result<NodeChild> {
    let dir = crate::js::ensure_installed()?;
    NodeChild::spawn(&dir, script, args)
}

/// The reference automerge-repo JS sync server (`tests/js/sync-server.mjs`)
/// on `127.0.0.1` and a free port, storing documents under a data folder.
/// Killed on drop; [`JsSyncServer::stop`] shuts it down cleanly (saving
/// every document) instead.
#[derive(Debug)]
pub struct JsSyncServer {
    node: NodeChild,
    port: u16,
}

impl JsSyncServer {
    /// Starts the server with its documents in `data_dir` (created if
    /// missing) and waits until it listens.
    pub fn start(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let data = data_dir
            .to_str()
            .with_context(|| format!("{} is not UTF-8", data_dir.display()))?;
        let mut node = spawn("sync-server.mjs", &["--port", "0", "--data", data])?;
        let port = node.wait_for_line("LISTENING ", START_TIMEOUT)?;
        let port = port
            .parse()
            .with_context(|| format!("sync-server.mjs printed a bad port {port:?}"))?;
        Ok(Self { node, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:PORT`: the URL for [`JsPeer::start`] and for our own
    /// client.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.node.stderr()
    }

    /// Closes the server's stdin, which makes it disconnect its peers, save
    /// every document and exit; waits for that (killing it after 10 s).
    pub fn stop(mut self) -> Result<()> {
        self.node.stop(Duration::from_secs(10))
    }
}

/// What `read` answers: the document as JSON (text as strings) and its
/// heads as hex change hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct DocState {
    pub doc: Value,
    pub heads: Vec<String>,
}

/// How [`JsPeer::start_with`] starts a peer.
#[derive(Debug, Clone)]
pub struct JsPeerOptions {
    /// The automerge-repo peer id; automerge-repo picks a random one if
    /// `None`.
    pub peer_id: Option<String>,
    /// How long to wait for the server's `peer` answer before failing.
    pub connect_timeout: Duration,
}

impl Default for JsPeerOptions {
    fn default() -> Self {
        Self {
            peer_id: None,
            connect_timeout: DEFAULT_WAIT,
        }
    }
}

/// A scripted automerge-repo JS client (`tests/js/peer.mjs`) connected to a
/// sync server. Killed on drop.
#[derive(Debug)]
pub struct JsPeer {
    node: NodeChild,
    peer_id: String,
}

impl JsPeer {
    /// Starts a peer on `url` (e.g. [`JsSyncServer::url`], or a relay URL
    /// with `?token=…`) and waits until the server answered its `join`. A
    /// refused connection (HTTP 401, nothing listening) is an error carrying
    /// the peer's stderr.
    pub fn start(url: &str) -> Result<Self> {
        Self::start_with(url, &JsPeerOptions::default())
    }

    /// [`JsPeer::start`] with a chosen automerge-repo peer id.
    pub fn start_with_peer_id(url: &str, peer_id: &str) -> Result<Self> {
        let options = JsPeerOptions {
            peer_id: Some(peer_id.to_owned()),
            ..JsPeerOptions::default()
        };
        Self::start_with(url, &options)
    }

    /// [`JsPeer::start`] with options.
    pub fn start_with(url: &str, options: &JsPeerOptions) -> Result<Self> {
        let connect_ms = millis(options.connect_timeout).to_string();
        let mut args = vec!["--url", url, "--connect-timeout-ms", &connect_ms];
        if let Some(id) = &options.peer_id {
            args.extend(["--peer-id", id]);
        }
        let mut node = spawn("peer.mjs", &args)?;
        let peer_id = node.wait_for_line("READY ", START_TIMEOUT + options.connect_timeout)?;
        Ok(Self { node, peer_id })
    }

    /// This peer's automerge-repo peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// What the peer printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.node.stderr()
    }

    /// Sends one command (a JSON object; its `id` is assigned here) and
    /// returns the whole answer object (`{"id", "ok": true, …}`). An
    /// `ok: false` answer becomes an error with the JS error text. Waits for
    /// the command's `timeoutMs` (default 10 s) plus a few seconds.
    pub fn request(&mut self, cmd: Value) -> Result<Value> {
        self.node.request(cmd, DEFAULT_WAIT)
    }

    /// Creates a document with `doc` as its initial content; returns its
    /// `automerge:` URL. The peer announces it to the server right away; call
    /// [`JsPeer::flush`] before another peer looks for it.
    pub fn create(&mut self, doc: Value) -> Result<String> {
        let answer = self.request(json!({"op": "create", "doc": doc}))?;
        string_field(&answer, "url")
    }

    /// Finds a document (waiting up to [`DEFAULT_WAIT`]) and returns its
    /// content. A document no peer has is an error whose text contains
    /// "unavailable".
    pub fn find(&mut self, url: &str) -> Result<Value> {
        self.find_within(url, DEFAULT_WAIT)
    }

    /// [`JsPeer::find`] with a chosen timeout.
    pub fn find_within(&mut self, url: &str, timeout: Duration) -> Result<Value> {
        let mut answer =
            self.request(json!({"op": "find", "url": url, "timeoutMs": millis(timeout)}))?;
        Ok(answer["doc"].take())
    }

    /// Sets `value` at `path`, creating intermediate maps; returns the new
    /// heads. A string value becomes collaborative text (automerge 3's
    /// default), so [`JsPeer::splice`] can edit it.
    pub fn put(&mut self, url: &str, path: &[&str], value: Value) -> Result<Vec<String>> {
        let answer =
            self.request(json!({"op": "put", "url": url, "path": path, "value": value}))?;
        heads(&answer)
    }

    /// Deletes the key at `path`; returns the new heads.
    pub fn delete(&mut self, url: &str, path: &[&str]) -> Result<Vec<String>> {
        let answer = self.request(json!({"op": "delete", "url": url, "path": path}))?;
        heads(&answer)
    }

    /// `Automerge.splice` on the text at `path`: deletes `delete` characters
    /// at `index` and inserts `insert` there; returns the new heads.
    pub fn splice(
        &mut self,
        url: &str,
        path: &[&str],
        index: usize,
        delete: usize,
        insert: &str,
    ) -> Result<Vec<String>> {
        let answer = self.request(json!({
            "op": "splice", "url": url, "path": path,
            "index": index, "delete": delete, "insert": insert,
        }))?;
        heads(&answer)
    }

    /// The document's content and heads as this peer has them now.
    pub fn read(&mut self, url: &str) -> Result<DocState> {
        let mut answer = self.request(json!({"op": "read", "url": url}))?;
        Ok(DocState {
            heads: heads(&answer)?,
            doc: answer["doc"].take(),
        })
    }

    /// Waits until the value at `path` equals `equals` (JSON deep equality)
    /// and returns the whole document; an error after `timeout`.
    pub fn wait_for(
        &mut self,
        url: &str,
        path: &[&str],
        equals: Value,
        timeout: Duration,
    ) -> Result<Value> {
        let mut answer = self.request(json!({
            "op": "waitFor", "url": url, "path": path,
            "equals": equals, "timeoutMs": millis(timeout),
        }))?;
        Ok(answer["doc"].take())
    }

    /// Waits until every connected peer has acknowledged all of this peer's
    /// documents (their sync states' shared heads include our heads).
    pub fn flush(&mut self, timeout: Duration) -> Result<()> {
        self.request(json!({"op": "flush", "timeoutMs": millis(timeout)}))?;
        Ok(())
    }

    /// The peer ids this peer is connected to.
    pub fn peers(&mut self) -> Result<Vec<String>> {
        let answer = self.request(json!({"op": "peers"}))?;
        strings(&answer, "peers")
    }

    /// Errors thrown inside the peer since it was ready and kept from ending
    /// it, e.g. `Unexpected server response: 401` when the stock
    /// `WebSocketClientAdapter` is refused on reconnect.
    pub fn errors(&mut self) -> Result<Vec<String>> {
        let answer = self.request(json!({"op": "errors"}))?;
        strings(&answer, "errors")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn string_field(answer: &Value, key: &str) -> Result<String> {
    answer
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the peer's answer has no string `{key}`: {answer}"))
}

fn strings(answer: &Value, key: &str) -> Result<Vec<String>> {
    answer
        .get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .with_context(|| format!("the peer's answer has no string array `{key}`: {answer}"))
}

fn heads(answer: &Value) -> Result<Vec<String>> {
    strings(answer, "heads")
}

#[cfg(test)]
mod tests;
