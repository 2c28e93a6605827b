//! What goes to the driver and what it answers: a page's window, where to
//! type, what to wait for and which format to apply; the editor's runs,
//! the page's state and who the page is, read from the driver's JSON.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

/// The size of a page's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

impl Viewport {
    /// A phone held upright.
    pub const PHONE: Self = Self {
        width: 390,
        height: 844,
    };
    /// A laptop screen.
    pub const LAPTOP: Self = Self {
        width: 1280,
        height: 800,
    };
}

/// Where typing starts in the requirements body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// At this automerge text index (block markers count one each).
    Index(usize),
    /// At the end of the body.
    End,
}

impl At {
    pub(super) fn json(self) -> Value {
        match self {
            Self::Index(i) => json!(i),
            Self::End => json!("end"),
        }
    }
}

/// What the driver's `join` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// Redeemed: the page went on to the workspace.
    Joined,
    /// The form said why not (the name typed stays in the box).
    Refused(String),
    /// The link is not an invite: no form, only this message.
    BadLink(String),
}

/// A condition the driver's `waitFor` waits on.
#[derive(Debug, Clone, Copy)]
pub enum Until<'a> {
    /// The page's text holds this.
    Text(&'a str),
    /// A notice (or the join form's message) holds this.
    Notice(&'a str),
    /// An element matches this CSS selector.
    Selector(&'a str),
    /// The badge says the link to the relay is up (`true`) or down.
    Online(bool),
    /// The badge counts this many edits waiting for the relay.
    Waiting(u64),
    /// A comment's body holds this.
    Comment(&'a str),
    /// The document list shows this title.
    Title(&'a str),
    /// This person is shown as present in the open document.
    Present(&'a str),
    /// The open document's body text holds this.
    EditorText(&'a str),
    /// The open document's body is exactly this text with these runs.
    EditorIs(&'a Editor),
    /// The service worker that keeps the app for offline use controls the
    /// page (it has kept the app).
    OfflineReady,
}

impl Until<'_> {
    pub(super) fn pair(self) -> (&'static str, Value) {
        match self {
            Self::Text(s) => ("text", json!(s)),
            Self::Notice(s) => ("notice", json!(s)),
            Self::Selector(s) => ("selector", json!(s)),
            Self::Online(up) => ("status", json!(if up { "online" } else { "offline" })),
            Self::Waiting(n) => ("waiting", json!(n)),
            Self::Comment(s) => ("comment", json!(s)),
            Self::Title(s) => ("title", json!(s)),
            Self::Present(s) => ("present", json!(s)),
            Self::EditorText(s) => ("editorText", json!(s)),
            Self::EditorIs(editor) => (
                "editorIs",
                json!({"text": editor.text, "runs": runs_json(&editor.runs)}),
            ),
            Self::OfflineReady => ("offlineReady", json!(true)),
        }
    }
}

/// A formatting command of the editor's toolbar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Bold,
    Italic,
    Heading,
    Paragraph,
    Bullets,
    Numbers,
}

impl Format {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Bold => "bold",
            Self::Italic => "italic",
            Self::Heading => "heading",
            Self::Paragraph => "paragraph",
            Self::Bullets => "bullets",
            Self::Numbers => "numbers",
        }
    }
}

/// A run of the body's text with its marks (`strong: true`, `link: "…"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub text: String,
    pub marks: BTreeMap<String, Value>,
}

/// The open requirements document as the page holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    /// The body as lines, headings as `## `, list items as `- ` and `1. `,
    /// marks left out (the page's `bodyText`).
    pub text: String,
    /// The text runs with their marks, blocks left out (`markRuns`).
    pub runs: Vec<Run>,
}

/// What `editor` answers: the body, and whether the person may type in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorShown {
    pub body: Editor,
    pub read_only: bool,
}

/// A notice at the top of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub key: String,
    pub tone: String,
    pub text: String,
}

/// A comment shown beside the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentShown {
    pub id: String,
    pub author: String,
    pub body: String,
    pub resolved: bool,
}

/// What the page shows (the driver's `state`).
#[derive(Debug, Clone)]
pub struct PageState {
    /// The path and hash, e.g. `/#/w/WS/d/DOC`.
    pub path: String,
    /// The titles in the document list.
    pub titles: Vec<String>,
    pub notices: Vec<Notice>,
    /// `online`, `offline` or `connecting`; `None` outside the app.
    pub status: Option<String>,
    /// The edits the badge counts as waiting.
    pub waiting: Option<u64>,
    pub status_text: String,
    /// Whether the open document is read-only for this person.
    pub read_only: Option<bool>,
    pub read_only_reason: Option<String>,
    pub comments: Vec<CommentShown>,
    /// The whole answer, for messages.
    pub raw: Value,
}

/// Who the page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    pub public_key: String,
    pub name: String,
    /// The automerge actor of this browser (hex).
    pub actor: String,
}

/// The string `key` of a driver's answer.
pub(super) fn string(answer: &Value, key: &str) -> Result<String> {
    answer
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the driver's answer has no string `{key}`: {answer}"))
}

/// The editor's runs, as the driver lists them.
pub(super) fn runs(value: &Value) -> Result<Vec<Run>> {
    value
        .as_array()
        .with_context(|| format!("runs that are not a list: {value}"))?
        .iter()
        .map(|run| {
            Ok(Run {
                text: string(run, "text")?,
                marks: run["marks"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Runs as the driver takes them.
fn runs_json(runs: &[Run]) -> Value {
    runs.iter()
        .map(|run| json!({"text": run.text, "marks": run.marks}))
        .collect()
}

/// What the driver's `state` answered.
pub(super) fn page_state(raw: Value) -> Result<PageState> {
    let strings = |key: &str| -> Vec<String> {
        raw[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let notices = raw["notices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| Notice {
            key: text(&n["key"]),
            tone: text(&n["tone"]),
            text: text(&n["text"]),
        })
        .collect();
    let comments = raw["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| CommentShown {
            id: text(&c["id"]),
            author: text(&c["author"]),
            body: text(&c["body"]),
            resolved: c["resolved"] == json!(true),
        })
        .collect();
    Ok(PageState {
        path: raw["path"]
            .as_str()
            .with_context(|| format!("a state without a path: {raw}"))?
            .to_owned(),
        titles: strings("titles"),
        notices,
        status: raw["status"].as_str().map(str::to_owned),
        waiting: raw["waiting"].as_u64(),
        status_text: text(&raw["statusText"]),
        read_only: raw["readOnly"].as_bool(),
        read_only_reason: raw["readOnlyReason"].as_str().map(str::to_owned),
        comments,
        raw,
    })
}
