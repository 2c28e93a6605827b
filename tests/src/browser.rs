//! rapport's web app in headless Chromium, driven from Rust tests.
//!
//! [`Browser::start`] installs `web/`'s pinned packages when needed (the
//! same rule as `tests/js`: `npm ci` when `node_modules` is missing or
//! older than `package-lock.json`), checks that Chromium is there, and runs
//! `web/tests/driver.mjs`: one Chromium, any number of pages, each in its
//! own browser context (its own IndexedDB, key and replica). The driver's
//! commands are documented at the top of that file; [`Browser::request`]
//! sends any of them, and the methods here wrap the ones the tests use.
//!
//! Every wait is the driver's `waitFor` on a condition the page shows,
//! bounded by a timeout ([`Browser::wait_for`]); nothing here sleeps or
//! measures time. Commands for different pages run at the same time in the
//! driver: [`Browser::send`] starts one and [`Browser::finish`] reads its
//! answer, so two people can type at once.
//!
//! `messages` holds what goes to the driver and what it answers, read
//! from its JSON. [`world`] sets up what the browser tests run against: a relay in this
//! process and a staff member's Rust replica with a workspace, a customer,
//! a requirements document and its comment thread.

mod messages;
pub mod world;

pub use messages::{
    At, CommentShown, Editor, EditorShown, Format, Join, Notice, PageState, Run, Until, Viewport,
    WhoAmI,
};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::node::{NodeChild, Pending};
use messages::{page_state, runs, string};

/// How long `npm ci` (when needed) is not counted in: the driver may take
/// this long to launch Chromium and print `READY`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The wait for commands without a `timeoutMs` of their own: opening a page
/// waits for its load (Playwright's 30 s navigation timeout).
const COMMAND_WAIT: Duration = Duration::from_secs(40);
/// Where Debian's Chromium lives.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The `web/` folder: the app, its lock file and the test driver.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .join("web")
}

/// The Chromium the driver launches: `RAPPORT_CHROMIUM`, or Debian's.
pub fn chromium() -> Result<PathBuf> {
    let path = std::env::var_os("RAPPORT_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from);
    if !path.is_file() {
        bail!(
            "no Chromium at {}: the browser tests drive a headless Chromium through \
             playwright-core (never a downloaded browser). `.ci/run` installs it with \
             `apt-get install chromium`; do the same here, or set RAPPORT_CHROMIUM to \
             a Chromium binary",
            path.display()
        );
    }
    Ok(path)
}

/// The browser of this test process: started on first use and lent to the
/// process's tests one at a time (the guard holds it for a whole test),
/// with the pages an earlier test left open closed first. A test file is
/// one process, so it gets one Chromium; the driver closes it and exits
/// when the process ends and the driver's stdin closes.
pub fn shared() -> Result<MutexGuard<'static, Browser>> {
    static SHARED: OnceLock<Result<Mutex<Browser>, String>> = OnceLock::new();
    let browser = SHARED
        .get_or_init(|| {
            Browser::start()
                .map(Mutex::new)
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("the browser did not start: {e}"))?;
    let mut browser = browser.lock().unwrap_or_else(PoisonError::into_inner);
    browser.close_all();
    Ok(browser)
}

/// One headless Chromium and the pages opened in it.
#[derive(Debug)]
pub struct Browser {
    node: NodeChild,
    pages: BTreeSet<String>,
}

impl Browser {
    /// Installs `web/`'s packages if needed, checks Chromium, starts the
    /// driver and waits for it to have launched the browser.
    pub fn start() -> Result<Self> {
        let chromium = chromium()?;
        let chromium = chromium
            .to_str()
            .with_context(|| format!("{} is not UTF-8", chromium.display()))?;
        crate::js::check_node()?;
        let dir = web_dir();
        crate::js::ensure_installed_in(&dir)?;
        let mut node = NodeChild::spawn(&dir, "tests/driver.mjs", &["--chromium", chromium])?;
        node.wait_for_line("READY", START_TIMEOUT)?;
        Ok(Self {
            node,
            pages: BTreeSet::new(),
        })
    }

    /// What the driver printed on stderr so far (the pages' errors and
    /// warnings among it).
    pub fn stderr(&self) -> String {
        self.node.stderr()
    }

    /// Sends one command and returns its answer; `ok: false` is an error
    /// with the driver's text.
    pub fn request(&mut self, cmd: Value) -> Result<Value> {
        self.node.request(cmd, COMMAND_WAIT)
    }

    /// Starts one command; [`Browser::finish`] reads its answer. Meanwhile
    /// commands for other pages run.
    pub fn send(&mut self, cmd: Value) -> Result<Pending> {
        self.node.send(cmd, COMMAND_WAIT)
    }

    /// The answer to a command started with [`Browser::send`].
    pub fn finish(&mut self, pending: Pending) -> Result<Value> {
        let answer = self.node.answer(pending)?;
        if answer.get("ok") == Some(&Value::Bool(true)) {
            return Ok(answer);
        }
        bail!(
            "the driver failed: {}",
            answer.get("error").and_then(Value::as_str).unwrap_or("?")
        )
    }

    /// Opens `url` in a new browser context called `page` (closing an
    /// earlier one of that name).
    pub fn open(&mut self, page: &str, url: &str, viewport: Viewport) -> Result<()> {
        self.pages.insert(page.to_owned());
        let viewport = json!({"width": viewport.width, "height": viewport.height});
        self.request(json!({"op": "open", "page": page, "url": url, "viewport": viewport}))?;
        Ok(())
    }

    /// Closes a page and its context.
    pub fn close(&mut self, page: &str) -> Result<()> {
        self.pages.remove(page);
        self.request(json!({"op": "close", "page": page}))?;
        Ok(())
    }

    /// Closes every page this value opened (a page whose opening failed
    /// half way may not be there to close: that is not an error).
    pub fn close_all(&mut self) {
        for page in std::mem::take(&mut self.pages) {
            let _ = self.request(json!({"op": "close", "page": page}));
        }
    }

    pub fn goto(&mut self, page: &str, url: &str) -> Result<()> {
        self.request(json!({"op": "goto", "page": page, "url": url}))?;
        Ok(())
    }

    /// Reloads and waits for the app (or the join page) to be there.
    pub fn reload(&mut self, page: &str) -> Result<()> {
        self.request(json!({"op": "reload", "page": page}))?;
        Ok(())
    }

    /// Navigates inside the app, e.g. `#/w/WS/d/DOC`.
    pub fn route(&mut self, page: &str, route: &str) -> Result<()> {
        self.request(json!({"op": "route", "page": page, "route": route}))?;
        Ok(())
    }

    /// Cuts the page's context off the network, or connects it again.
    pub fn offline(&mut self, page: &str, offline: bool) -> Result<()> {
        self.request(json!({"op": "offline", "page": page, "offline": offline}))?;
        Ok(())
    }

    /// Fills the join form with `name` and submits it.
    pub fn join(&mut self, page: &str, name: &str) -> Result<Join> {
        let answer = self.request(json!({"op": "join", "page": page, "name": name}))?;
        if answer["joined"] == json!(true) {
            return Ok(Join::Joined);
        }
        let message = string(&answer, "message")?;
        Ok(if answer["link"] == json!(true) {
            Join::BadLink(message)
        } else {
            Join::Refused(message)
        })
    }

    /// The page's key file, as its "Export key" writes it.
    pub fn export_key(&mut self, page: &str) -> Result<String> {
        let answer = self.request(json!({"op": "exportKey", "page": page}))?;
        string(&answer, "file")
    }

    /// Imports a key file through the account page's file input.
    pub fn import_key(&mut self, page: &str, file: &str) -> Result<()> {
        self.request(json!({"op": "importKey", "page": page, "file": file}))?;
        Ok(())
    }

    pub fn whoami(&mut self, page: &str) -> Result<WhoAmI> {
        let answer = self.request(json!({"op": "whoami", "page": page}))?;
        Ok(WhoAmI {
            public_key: string(&answer, "publicKey")?,
            name: string(&answer, "name")?,
            actor: string(&answer, "actor")?,
        })
    }

    /// Clicks the document with this title in the list and waits for it.
    pub fn open_doc(&mut self, page: &str, title: &str) -> Result<()> {
        self.request(json!({"op": "openDoc", "page": page, "title": title}))?;
        Ok(())
    }

    /// Types `text` with real key presses, starting `at`.
    pub fn type_text(&mut self, page: &str, text: &str, at: At) -> Result<()> {
        let pending = self.start_typing(page, text, at, Duration::ZERO)?;
        self.finish(pending).map(drop)
    }

    /// Starts typing `text` at `at`, `delay` between key presses; the
    /// answer ([`Browser::finish`]) comes when the last key is pressed.
    pub fn start_typing(
        &mut self,
        page: &str,
        text: &str,
        at: At,
        delay: Duration,
    ) -> Result<Pending> {
        self.send(json!({
            "op": "type", "page": page, "text": text, "at": at.json(),
            "delayMs": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }))
    }

    /// Applies a format, to body indexes `range` if given (else the
    /// selection); whether it applied.
    pub fn format(
        &mut self,
        page: &str,
        format: Format,
        range: Option<(usize, usize)>,
    ) -> Result<bool> {
        let mut cmd = json!({"op": "format", "page": page, "format": format.name()});
        if let Some((from, to)) = range {
            cmd["from"] = json!(from);
            cmd["to"] = json!(to);
        }
        let answer = self.request(cmd)?;
        Ok(answer["applied"] == json!(true))
    }

    /// The open document's body as the page holds it.
    pub fn editor(&mut self, page: &str) -> Result<EditorShown> {
        let answer = self.request(json!({"op": "editor", "page": page}))?;
        Ok(EditorShown {
            body: Editor {
                text: string(&answer, "text")?,
                runs: runs(&answer["runs"])?,
            },
            read_only: answer["readOnly"] == json!(true),
        })
    }

    /// What the page shows now.
    pub fn state(&mut self, page: &str) -> Result<PageState> {
        let answer = self.request(json!({"op": "state", "page": page}))?;
        page_state(answer)
    }

    /// Waits until `until` holds on the page, at most `timeout`; the error
    /// says what the page showed instead.
    pub fn wait_for(&mut self, page: &str, until: Until<'_>, timeout: Duration) -> Result<()> {
        let (kind, value) = until.pair();
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.request(json!({"op": "waitFor", "page": page, kind: value, "timeoutMs": timeout_ms}))
            .with_context(|| format!("{page}: waiting for {kind} {value}"))?;
        Ok(())
    }

    /// The text the page shows (`document.body.innerText`).
    pub fn text(&mut self, page: &str) -> Result<String> {
        let answer = self.eval(page, "document.body.innerText")?;
        answer
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("the page's text is not a string: {answer}"))
    }

    /// Evaluates a JS expression in the page (awaiting a promise) and
    /// returns its value as JSON.
    pub fn eval(&mut self, page: &str, script: &str) -> Result<Value> {
        let mut answer = self.request(json!({"op": "eval", "page": page, "script": script}))?;
        Ok(answer["value"].take())
    }

    /// Writes a new comment on the open record; its id.
    pub fn comment(&mut self, page: &str, text: &str) -> Result<String> {
        let answer = self.request(json!({"op": "comment", "page": page, "text": text}))?;
        string(&answer, "commentId")
    }

    /// Writes a scalar field through the page's own replica, as the person,
    /// past the editor's read-only state.
    pub fn force_change(&mut self, page: &str, doc: &str, field: &str, value: &str) -> Result<()> {
        self.request(json!({
            "op": "forceChange", "page": page, "doc": doc, "field": field, "value": value,
        }))?;
        Ok(())
    }

    /// Saves a PNG of the page's window (or the whole page).
    pub fn screenshot(&mut self, page: &str, path: &Path, full_page: bool) -> Result<()> {
        let path = path
            .to_str()
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        self.request(
            json!({"op": "screenshot", "page": page, "path": path, "fullPage": full_page}),
        )?;
        Ok(())
    }

    /// The script errors the page has thrown.
    pub fn page_errors(&mut self, page: &str) -> Result<Vec<String>> {
        let answer = self.request(json!({"op": "errors", "page": page}))?;
        answer["errors"]
            .as_array()
            .context("errors answered no list")?
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .context("an error that is not text")
            })
            .collect()
    }

    /// Closes the driver's stdin and waits for it to close Chromium.
    pub fn stop(mut self) -> Result<()> {
        self.node.stop(Duration::from_secs(20))
    }
}
