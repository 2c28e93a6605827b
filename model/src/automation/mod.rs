//! Automation rules: `when EVENT [if CONDITION] then ACTION`.
//!
//! Rules live in a workspace's automations document, written by people with
//! `rapport automation add` and run by the relay under its own identity.
//! Both sides parse them with [`Rule::parse`], so a rule the CLI accepts is
//! a rule the relay runs. The grammar, in full:
//!
//! ```text
//! rule      = "when" event ["if" condition *("and" condition)] "then" action
//! event     = kind "." field "changes" ["to" value]   ; a record's field changes
//!           | "form" "submitted" [value]               ; a form (by name) was submitted
//!           | "document" "shared"                      ; a document was shared with someone
//! kind      = "task" | "customer" | "doc"
//! condition = field ("is" | "is" "not" | "has") value  ; `has`: a list field holds the value
//! action    = "create" "task" *(field "=" value)       ; values may use {field} of the record
//!           | "set" field "=" value
//!           | "comment" value
//!           | "webhook" url
//! value     = word | "quoted text" (backslash escapes \" and \\)
//! ```
//!
//! A `due` value of `+N` or `+Nd` means N days after the event. Templates
//! name fields of the record the event happened on (`{title}`, `{name}`,
//! `{id}` for its document id, `{form:NAME}` for a form's public link).

use std::fmt;

pub mod document;
pub mod record;

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub event: Event,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// What a rule waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A record's field changes, to any value or to `to`.
    FieldChanges {
        kind: RecordKind,
        field: String,
        to: Option<String>,
    },
    /// A form was submitted (any form, or the one with this name).
    FormSubmitted { form: Option<String> },
    /// A document was shared with someone.
    DocumentShared,
}

/// The kinds of record an event may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Task,
    Customer,
    Doc,
}

impl RecordKind {
    /// The kind as the document header writes it (a `doc` is a
    /// requirements document).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Customer => "customer",
            Self::Doc => "requirements",
        }
    }

    /// The kind as rules write it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Doc => "doc",
            other => other.as_str(),
        }
    }
}

/// A test on the record the event happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub test: Test,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    Is,
    IsNot,
    Has,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new task, its fields given as templates.
    CreateTask { fields: Vec<(String, String)> },
    /// Sets a field of the record the event happened on.
    Set { field: String, value: String },
    /// Adds a comment to the record's thread.
    Comment { text: String },
    /// Posts the event as JSON to `url`, signed with the workspace's secret.
    Webhook { url: String },
}

/// Why a rule does not parse: what was expected, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at word {position} of the rule)")]
pub struct RuleError {
    pub message: String,
    /// 1-based index of the word where parsing stopped.
    pub position: usize,
}

/// The rules rapport ships as ready examples, by name.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "invoice-when-order-fulfilled",
        r#"when task.status changes to done if tags has order then create task title="Invoice: {title}" tags=invoice customer={customer} due=+0d"#,
    ),
    (
        "feedback-when-query-resolved",
        r#"when task.status changes to done if tags has query then comment "Thank you! Tell us how we did: {form:feedback}""#,
    ),
    (
        "follow-up-when-offer-sent",
        r#"when customer.stage changes to proposal then create task title="Follow up on the offer to {name}" tags=follow-up customer={id} due=+7d"#,
    ),
];

impl Rule {
    /// Parses a rule written in the grammar of this module.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let words = tokenize(text)?;
        Parser { words, at: 0 }.rule()
    }

    /// Whether the record (its fields read through `field`) passes every
    /// condition. A missing field is empty.
    pub fn conditions_hold(&self, field: impl Fn(&str) -> FieldValue) -> bool {
        self.conditions.iter().all(|c| {
            let value = field(&c.field);
            match c.test {
                Test::Is => value.as_text() == c.value,
                Test::IsNot => value.as_text() != c.value,
                Test::Has => value.contains(&c.value),
            }
        })
    }
}

/// A field's value, as conditions and templates see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldValue {
    #[default]
    Missing,
    Text(String),
    List(Vec<String>),
}

impl FieldValue {
    /// The value as text: a list joined with ", ".
    pub fn as_text(&self) -> String {
        match self {
            Self::Missing => String::new(),
            Self::Text(text) => text.clone(),
            Self::List(items) => items.join(", "),
        }
    }

    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::Missing => false,
            Self::Text(text) => text == wanted,
            Self::List(items) => items.iter().any(|i| i == wanted),
        }
    }
}

/// Fills `{name}` placeholders from `lookup`; `{{` and `}}` are literal
/// braces, and a placeholder `lookup` does not know is left as written.
pub fn render(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let (true, Some(end)) = (tail.starts_with('{'), tail.find('}')) {
            let name = &tail[1..end];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Days after the event a `due` value names: `+3`, `+3d`, `3d`.
pub fn due_in_days(value: &str) -> Option<u32> {
    let digits = value.trim_start_matches('+').trim_end_matches('d');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn tokenize(text: &str) -> Result<Vec<String>, RuleError> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            if c != '"' {
                word.push(c);
                continue;
            }
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => word.push(escaped),
                        Some(other) => {
                            word.push('\\');
                            word.push(other);
                        }
                        None => return Err(unclosed(words.len())),
                    },
                    Some(c) => word.push(c),
                    None => return Err(unclosed(words.len())),
                }
            }
        }
        words.push(word);
    }
}

fn unclosed(words: usize) -> RuleError {
    RuleError {
        message: "a quote is not closed".into(),
        position: words + 1,
    }
}

struct Parser {
    words: Vec<String>,
    at: usize,
}

impl Parser {
    fn rule(mut self) -> Result<Rule, RuleError> {
        self.expect("when")?;
        let event = self.event()?;
        let mut conditions = Vec::new();
        if self.accept("if") {
            conditions.push(self.condition()?);
            while self.accept("and") {
                conditions.push(self.condition()?);
            }
        }
        self.expect("then")?;
        let action = self.action()?;
        if let Some(extra) = self.words.get(self.at) {
            return Err(self.error(format!("unexpected `{extra}` after the action")));
        }
        Ok(Rule {
            event,
            conditions,
            action,
        })
    }

    fn event(&mut self) -> Result<Event, RuleError> {
        let word = self.next("an event")?;
        match word.as_str() {
            "form" => {
                self.expect("submitted")?;
                let form = match self.peek() {
                    Some(w) if w != "if" && w != "then" => Some(self.next("a form name")?),
                    _ => None,
                };
                Ok(Event::FormSubmitted { form })
            }
            "document" => {
                self.expect("shared")?;
                Ok(Event::DocumentShared)
            }
            other => {
                let Some((kind, field)) = other.split_once('.') else {
                    return Err(self.back_error(format!(
                        "`{other}` is not an event: use KIND.FIELD changes [to VALUE], form submitted [NAME], or document shared"
                    )));
                };
                let kind = match kind {
                    "task" => RecordKind::Task,
                    "customer" => RecordKind::Customer,
                    "doc" => RecordKind::Doc,
                    _ => {
                        return Err(self.back_error(format!(
                            "`{kind}` is not a record kind: use task, customer or doc"
                        )));
                    }
                };
                if field.is_empty() {
                    return Err(self.back_error("the event names no field".into()));
                }
                let field = field.to_owned();
                self.expect("changes")?;
                let to = if self.accept("to") {
                    Some(self.next("the value after `to`")?)
                } else {
                    None
                };
                Ok(Event::FieldChanges { kind, field, to })
            }
        }
    }

    fn condition(&mut self) -> Result<Condition, RuleError> {
        let field = self.next("a field to test")?;
        let test = match self.next("`is`, `is not` or `has`")?.as_str() {
            "is" if self.accept("not") => Test::IsNot,
            "is" => Test::Is,
            "has" => Test::Has,
            other => {
                return Err(self.back_error(format!(
                    "`{other}` is not a test: use `is`, `is not` or `has`"
                )));
            }
        };
        let value = self.next("the value to test against")?;
        Ok(Condition { field, test, value })
    }

    fn action(&mut self) -> Result<Action, RuleError> {
        let word = self.next("an action")?;
        match word.as_str() {
            "create" => {
                self.expect("task")?;
                let mut fields = Vec::new();
                while let Some(word) = self.words.get(self.at).cloned() {
                    self.at += 1;
                    let Some((field, value)) = word.split_once('=') else {
                        return Err(
                            self.back_error(format!("`{word}` is not a FIELD=VALUE assignment"))
                        );
                    };
                    if field == "due" && due_in_days(value).is_none() {
                        return Err(self.back_error(format!(
                            "`due={value}` is not a number of days such as due=+7d"
                        )));
                    }
                    fields.push((field.to_owned(), value.to_owned()));
                }
                if !fields.iter().any(|(f, _)| f == "title") {
                    return Err(self.error("`create task` needs a title=…".into()));
                }
                Ok(Action::CreateTask { fields })
            }
            "set" => {
                let field = self.next("the field to set")?;
                // `set priority = high` or `set priority=high`.
                let (field, value) = match field.split_once('=') {
                    Some((f, v)) if !v.is_empty() => (f.to_owned(), v.to_owned()),
                    Some((f, _)) => (f.to_owned(), self.next("the value to set")?),
                    None => {
                        self.expect("=")?;
                        (field, self.next("the value to set")?)
                    }
                };
                Ok(Action::Set { field, value })
            }
            "comment" => Ok(Action::Comment {
                text: self.next("the comment's text")?,
            }),
            "webhook" => {
                let url = self.next("the webhook's URL")?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(self.back_error(format!("`{url}` is not an http(s) URL")));
                }
                Ok(Action::Webhook { url })
            }
            other => Err(self.back_error(format!(
                "`{other}` is not an action: use create task, set, comment or webhook"
            ))),
        }
    }

    fn peek(&self) -> Option<&str> {
        self.words.get(self.at).map(String::as_str)
    }

    fn accept(&mut self, word: &str) -> bool {
        let found = self.peek() == Some(word);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, word: &str) -> Result<(), RuleError> {
        match self.peek() {
            Some(w) if w == word => {
                self.at += 1;
                Ok(())
            }
            Some(other) => Err(self.error(format!("expected `{word}`, found `{other}`"))),
            None => Err(self.error(format!("expected `{word}` at the end"))),
        }
    }

    fn next(&mut self, what: &str) -> Result<String, RuleError> {
        let word = self
            .words
            .get(self.at)
            .cloned()
            .ok_or_else(|| self.error(format!("expected {what} at the end")))?;
        self.at += 1;
        Ok(word)
    }

    fn error(&self, message: String) -> RuleError {
        RuleError {
            message,
            position: self.at + 1,
        }
    }

    /// An error about the word just taken.
    fn back_error(&self, message: String) -> RuleError {
        RuleError {
            message,
            position: self.at,
        }
    }
}

impl fmt::Display for Rule {
    /// The rule in the grammar [`Rule::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("when ")?;
        match &self.event {
            Event::FieldChanges { kind, field, to } => {
                write!(f, "{}.{field} changes", kind.word())?;
                if let Some(to) = to {
                    write!(f, " to {}", quoted(to))?;
                }
            }
            Event::FormSubmitted { form } => {
                f.write_str("form submitted")?;
                if let Some(form) = form {
                    write!(f, " {}", quoted(form))?;
                }
            }
            Event::DocumentShared => f.write_str("document shared")?,
        }
        for (i, c) in self.conditions.iter().enumerate() {
            let test = match c.test {
                Test::Is => "is",
                Test::IsNot => "is not",
                Test::Has => "has",
            };
            let joint = if i == 0 { "if" } else { "and" };
            write!(
                f,
                " {joint} {} {test} {}",
                quoted(&c.field),
                quoted(&c.value)
            )?;
        }
        f.write_str(" then ")?;
        match &self.action {
            Action::CreateTask { fields } => {
                f.write_str("create task")?;
                for (field, value) in fields {
                    write!(f, " {field}={}", quoted(value))?;
                }
                Ok(())
            }
            Action::Set { field, value } => write!(f, "set {field}={}", quoted(value)),
            Action::Comment { text } => write!(f, "comment {}", quoted(text)),
            Action::Webhook { url } => write!(f, "webhook {}", quoted(url)),
        }
    }
}

/// A value as one word: bare when it can be, quoted otherwise.
fn quoted(value: &str) -> String {
    let reserved = ["if", "and", "then", "to", "not", "="];
    if !value.is_empty()
        && !reserved.contains(&value)
        && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\')
    {
        return value.to_owned();
    }
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests;
