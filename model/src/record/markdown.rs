//! A requirements body as Markdown lines, both ways.
//!
//! The body is an automerge text object in automerge's rich-text schema,
//! the one `@automerge/prosemirror` (the web app's editor) reads and writes:
//! block markers split the text into paragraphs, headings (with a `level`)
//! and list items, and marks lie over ranges (`strong`, `em`, `link` with
//! its address). The command line shows and edits the same body as
//! Markdown, one block per line:
//!
//! ```text
//! ## Scope                     a heading of level 2
//! The portal **must** work     a paragraph with a bold word
//! - on phones                  an item of a bulleted list
//! 1. first                     an item of a numbered list
//! see [the spec](https://…)    a link;  _slanted_ is emphasis
//! ```
//!
//! [`spans`] reads such lines into the spans [`write`] gives automerge's
//! `update_spans`, which changes only what differs: a line edited in a
//! terminal while someone types elsewhere in the browser merges like any
//! two edits. A body without block markers (written by rapport before the
//! web app) reads as its plain text, and becomes blocks when written.

use std::collections::HashMap;
use std::sync::Arc;

use automerge::hydrate::{Map, Value as Hydrated};
use automerge::iter::Span;
use automerge::marks::{ExpandMark, MarkSet, UpdateSpansConfig};
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ReadDoc, ScalarValue};

/// One block of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    Paragraph,
    Heading(u8),
    Bullet,
    Numbered,
}

impl Block {
    fn of(map: &Map) -> Self {
        let text = |key: &str| match map.get(key) {
            Some(Hydrated::Scalar(ScalarValue::Str(text))) => Some(text.to_string()),
            Some(Hydrated::Text(text)) => Some(text.to_string()),
            _ => None,
        };
        match text("type").as_deref() {
            Some("heading") => {
                let level = match map.get("attrs") {
                    Some(Hydrated::Map(attrs)) => match attrs.get("level") {
                        Some(Hydrated::Scalar(ScalarValue::Int(n))) => *n,
                        Some(Hydrated::Scalar(ScalarValue::Uint(n))) => {
                            i64::try_from(*n).unwrap_or(6)
                        }
                        Some(Hydrated::Scalar(ScalarValue::F64(n))) => *n as i64,
                        _ => 1,
                    },
                    _ => 1,
                };
                Self::Heading(u8::try_from(level.clamp(1, 6)).unwrap_or(1))
            }
            Some("unordered-list-item") => Self::Bullet,
            Some("ordered-list-item") => Self::Numbered,
            _ => Self::Paragraph,
        }
    }

    /// The marker as the web app writes it: `type`, no parents, `attrs`.
    fn marker(&self) -> Span {
        let (kind, attrs): (&str, Map) = match self {
            Self::Paragraph => ("paragraph", Map::default()),
            Self::Heading(level) => (
                "heading",
                Map::from(HashMap::from([(
                    "level",
                    Hydrated::from(i64::from(*level)),
                )])),
            ),
            Self::Bullet => ("unordered-list-item", Map::default()),
            Self::Numbered => ("ordered-list-item", Map::default()),
        };
        Span::Block(Map::from(HashMap::from([
            ("type", Hydrated::from(kind)),
            ("parents", Hydrated::List(Vec::new().into())),
            ("attrs", Hydrated::Map(attrs)),
        ])))
    }

    fn prefix(&self) -> String {
        match self {
            Self::Paragraph => String::new(),
            Self::Heading(level) => format!("{} ", "#".repeat(usize::from(*level))),
            Self::Bullet => "- ".to_owned(),
            Self::Numbered => "1. ".to_owned(),
        }
    }

    /// The block a line starts with, and the rest of the line.
    fn parse(line: &str) -> (Self, &str) {
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            return (
                Self::Heading(u8::try_from(hashes).unwrap_or(1)),
                &line[hashes + 1..],
            );
        }
        if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            return (Self::Bullet, rest);
        }
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let rest = &line[digits..];
            if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
                return (Self::Numbered, rest);
            }
        }
        (Self::Paragraph, line)
    }
}

/// The marks this module writes, in the order they nest (outermost first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Marks {
    strong: bool,
    em: bool,
    link: Option<String>,
}

impl Marks {
    fn of(set: Option<&Arc<MarkSet>>) -> Self {
        let mut marks = Self::default();
        for (name, value) in set.into_iter().flat_map(|set| set.iter()) {
            let on = !matches!(value, ScalarValue::Null | ScalarValue::Boolean(false));
            match name {
                "strong" => marks.strong = on,
                "em" => marks.em = on,
                "link" => {
                    marks.link = match value {
                        ScalarValue::Str(href) => Some(href.to_string()),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        marks
    }

    fn set(&self) -> Option<Arc<MarkSet>> {
        let mut marks: Vec<(String, ScalarValue)> = Vec::new();
        if self.strong {
            marks.push(("strong".into(), ScalarValue::Boolean(true)));
        }
        if self.em {
            marks.push(("em".into(), ScalarValue::Boolean(true)));
        }
        if let Some(href) = &self.link {
            marks.push(("link".into(), ScalarValue::Str(href.as_str().into())));
        }
        (!marks.is_empty()).then(|| Arc::new(marks.into_iter().collect()))
    }
}

/// The body in `text` as Markdown lines; a body without block markers as
/// its plain text.
pub fn to_markdown<D: ReadDoc>(doc: &D, text: &ObjId) -> Result<String, AutomergeError> {
    let spans: Vec<Span> = doc.spans(text)?.collect();
    if !spans.iter().any(|span| matches!(span, Span::Block(_))) {
        return Ok(spans.iter().map(Span::as_str).collect());
    }
    let mut lines: Vec<String> = Vec::new();
    for span in &spans {
        match span {
            Span::Block(map) => lines.push(Block::of(map).prefix()),
            Span::Text { text, marks } => {
                if lines.is_empty() {
                    lines.push(String::new());
                }
                let line = lines.last_mut().expect("a line was pushed above");
                let starts_line = line.is_empty();
                line.push_str(&inline(text, &Marks::of(marks.as_ref()), starts_line));
            }
        }
    }
    Ok(lines.join("\n"))
}

/// `text` with `marks` as Markdown, escaped so that it reads back as
/// itself.
fn inline(text: &str, marks: &Marks, starts_line: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if matches!(c, '\\' | '*' | '_' | '[' | ']') {
            out.push('\\');
        } else if i == 0 && starts_line && matches!(c, '#' | '-' | '0'..='9') {
            // A paragraph starting `# `, `- ` or `1. ` must not read back
            // as a heading or a list item.
            out.push('\\');
        }
        out.push(c);
    }
    if let Some(href) = &marks.link {
        out = format!("[{out}]({})", href.replace(')', "%29"));
    }
    if marks.em {
        out = format!("_{out}_");
    }
    if marks.strong {
        out = format!("**{out}**");
    }
    out
}

/// The spans for Markdown lines: one block per line, marks from `**`, `_`
/// and `[text](address)`; a backslash takes the next character as text.
pub fn spans(markdown: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for line in markdown.split('\n') {
        let (block, rest) = Block::parse(line);
        out.push(block.marker());
        let mut runs: Vec<(String, Marks)> = Vec::new();
        parse_inline(rest, &Marks::default(), &mut runs);
        for (text, marks) in merge(runs) {
            out.push(Span::Text {
                text,
                marks: marks.set(),
            });
        }
    }
    out
}

/// Adjacent runs with the same marks as one.
fn merge(runs: Vec<(String, Marks)>) -> Vec<(String, Marks)> {
    let mut out: Vec<(String, Marks)> = Vec::new();
    for (text, marks) in runs {
        match out.last_mut() {
            Some((last, same)) if *same == marks => last.push_str(&text),
            _ if text.is_empty() => {}
            _ => out.push((text, marks)),
        }
    }
    out
}

fn parse_inline(text: &str, marks: &Marks, out: &mut Vec<(String, Marks)>) {
    let mut plain = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\\'
            && let Some(next) = rest[1..].chars().next()
        {
            plain.push(next);
            rest = &rest[1 + next.len_utf8()..];
            continue;
        }
        let styled = if let Some(inner) = rest.strip_prefix("**") {
            closing(inner, "**").map(|end| {
                let marks = Marks {
                    strong: true,
                    ..marks.clone()
                };
                (&inner[..end], marks, 2 + end + 2)
            })
        } else if let Some(inner) = rest.strip_prefix('_') {
            closing(inner, "_").map(|end| {
                let marks = Marks {
                    em: true,
                    ..marks.clone()
                };
                (&inner[..end], marks, 1 + end + 1)
            })
        } else if let Some(inner) = rest.strip_prefix('[') {
            closing(inner, "](").and_then(|end| {
                let after = &inner[end + 2..];
                let close = after.find(')')?;
                let marks = Marks {
                    link: Some(after[..close].replace("%29", ")")),
                    ..marks.clone()
                };
                Some((&inner[..end], marks, 1 + end + 2 + close + 1))
            })
        } else {
            None
        };
        match styled {
            Some((inner, inner_marks, used)) => {
                out.push((std::mem::take(&mut plain), marks.clone()));
                parse_inline(inner, &inner_marks, out);
                rest = &rest[used..];
            }
            None => {
                plain.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out.push((plain, marks.clone()));
}

/// Where `delimiter` first occurs in `text` unescaped, if after something.
fn closing(text: &str, delimiter: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if i > 0 && text[i..].starts_with(delimiter) {
            return Some(i);
        }
    }
    None
}

/// Makes the body in `text` hold `markdown`, changing only what differs.
pub fn write(
    tx: &mut impl Transactable,
    text: &ObjId,
    markdown: &str,
) -> Result<(), AutomergeError> {
    // Text typed at the edge of a bold word is bold, as in the editor; a
    // link does not grow.
    let config = UpdateSpansConfig::default()
        .with_default_expand(ExpandMark::After)
        .with_mark_expand("link", ExpandMark::None);
    tx.update_spans(text, config, spans(markdown))
}

#[cfg(test)]
mod tests {
    use automerge::{AutoCommit, ObjType, ROOT};

    use super::*;

    fn body(markdown: &str) -> (AutoCommit, ObjId) {
        let mut doc = AutoCommit::new();
        let text = doc.put_object(ROOT, "body", ObjType::Text).unwrap();
        write(&mut doc, &text, markdown).unwrap();
        (doc, text)
    }

    #[test]
    fn markdown_round_trips_through_blocks_and_marks() {
        let markdown = "## Scope\nThe portal **must** work _on phones_, see [the spec](https://example.test/a_(b)).\n- first\n1. second\n\n\\# not a heading \\*nor\\* \\[a link\\]";
        let (doc, text) = body(markdown);
        assert_eq!(to_markdown(&doc, &text).unwrap(), markdown);
        let spans: Vec<Span> = doc.spans(&text).unwrap().collect();
        let bold = spans.iter().find_map(|span| match span {
            Span::Text {
                text,
                marks: Some(marks),
            } if marks.iter().any(|(n, _)| n == "strong") => Some(text.clone()),
            _ => None,
        });
        assert_eq!(bold.as_deref(), Some("must"));
        let blocks = spans.iter().filter(|s| matches!(s, Span::Block(_))).count();
        assert_eq!(blocks, 6, "one block per line");
    }

    #[test]
    fn an_edit_changes_only_what_differs() {
        let (mut doc, text) = body("## Scope\nfirst line\nsecond line");
        let before = doc.get_heads();
        write(&mut doc, &text, "## Scope\nfirst line, longer\nsecond line").unwrap();
        let changes = doc.get_changes(&before);
        let ops: usize = changes.iter().map(|c| c.len()).sum();
        assert_eq!(ops, ", longer".chars().count(), "only the insertion");
        assert_eq!(
            to_markdown(&doc, &text).unwrap(),
            "## Scope\nfirst line, longer\nsecond line"
        );
    }

    #[test]
    fn a_body_of_plain_lines_reads_as_its_text() {
        let mut doc = AutoCommit::new();
        let text = doc.put_object(ROOT, "body", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, "## Scope\n\nplain *text*")
            .unwrap();
        assert_eq!(
            to_markdown(&doc, &text).unwrap(),
            "## Scope\n\nplain *text*"
        );
    }

    #[test]
    fn unclosed_delimiters_are_text() {
        let (doc, text) = body("2 ** 3 and [x and _y");
        // The leading digit is escaped on the way out; the rest is text.
        assert_eq!(
            to_markdown(&doc, &text).unwrap(),
            "\\2 \\*\\* 3 and \\[x and \\_y"
        );
    }
}
