//! The automerge-paper editing trace: reading it, and growing a document
//! with it.
//!
//! The trace (`shared/data/automerge-paper-edits.json.gz`) is a JSON array
//! of 259,778 edits, each `[position, deleteCount]` or
//! `[position, deleteCount, insertedText]`, applied in order to an empty
//! text.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, ObjId, ObjType, ROOT, ReadDoc};
use serde::Deserialize;

/// The key under which the document keeps its text.
pub(crate) const TEXT_KEY: &str = "text";

/// Where the trace is looked for when `--trace` is not given.
pub(crate) fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os("RAPPORT_TRACE") {
        return PathBuf::from(path);
    }
    let candidates = [
        "../shared/data/automerge-paper-edits.json.gz",
        "/work/shared/data/automerge-paper-edits.json.gz",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(candidates[0]))
}

/// One edit of the trace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Edit {
    Insert(usize, usize, String),
    Delete(usize, usize),
}

impl Edit {
    /// Where, how many characters deleted, what inserted.
    pub(crate) fn parts(&self) -> (usize, usize, &str) {
        (self.position(), self.deleted(), self.inserted())
    }

    fn position(&self) -> usize {
        match self {
            Self::Insert(at, ..) | Self::Delete(at, _) => *at,
        }
    }

    fn deleted(&self) -> usize {
        match self {
            Self::Insert(_, n, _) | Self::Delete(_, n) => *n,
        }
    }

    fn inserted(&self) -> &str {
        match self {
            Self::Insert(_, _, text) => text,
            Self::Delete(..) => "",
        }
    }
}

/// Reads a gzipped trace file.
pub(crate) fn read(path: &Path) -> Result<Vec<Edit>> {
    let file = std::fs::File::open(path).with_context(|| {
        format!(
            "reading the editing trace {} (give --trace PATH or RAPPORT_TRACE)",
            path.display()
        )
    })?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut json)
        .with_context(|| format!("{} is not a gzip file", path.display()))?;
    parse(&json).with_context(|| format!("{} is not an editing trace", path.display()))
}

/// Parses the JSON array of edits.
pub(crate) fn parse(json: &[u8]) -> Result<Vec<Edit>> {
    Ok(serde_json::from_slice(json)?)
}

/// Applies `edits` to a plain string: what the document's text must equal.
pub(crate) fn replay_to_string(edits: &[Edit]) -> Result<String> {
    let mut text: Vec<char> = Vec::new();
    for (n, edit) in edits.iter().enumerate() {
        let at = edit.position();
        let end = at + edit.deleted();
        if end > text.len() {
            bail!("edit {n} reaches past the end of the text");
        }
        text.splice(at..end, edit.inserted().chars());
    }
    Ok(text.into_iter().collect())
}

/// A document holding one text object under [`TEXT_KEY`], grown with
/// `edits`, one change per `edits_per_change` edits.
#[derive(Debug)]
pub(crate) struct Grown {
    pub(crate) doc: Automerge,
    pub(crate) text: ObjId,
}

/// Grows a document with the edits, committing a change every
/// `edits_per_change` edits (1 = one change per keystroke, as typed).
pub(crate) fn grow(
    edits: &[Edit],
    edits_per_change: usize,
    mut progress: impl FnMut(usize),
) -> Result<Grown> {
    let mut doc = AutoCommit::new();
    let text = doc.put_object(ROOT, TEXT_KEY, ObjType::Text)?;
    doc.commit();
    let every = edits_per_change.max(1);
    for (n, edit) in edits.iter().enumerate() {
        doc.splice_text(
            &text,
            edit.position(),
            isize::try_from(edit.deleted())?,
            edit.inserted(),
        )?;
        if (n + 1) % every == 0 {
            doc.commit();
        }
        if n % 4096 == 0 {
            progress(n);
        }
    }
    doc.commit();
    let doc = doc.document().clone();
    Ok(Grown { doc, text })
}

/// The text of a grown document.
pub(crate) fn text_of(doc: &Automerge, text: &ObjId) -> Result<String> {
    Ok(doc.text(text)?)
}

/// The text object of a document grown here (or any document with a text
/// under [`TEXT_KEY`]).
pub(crate) fn text_object(doc: &Automerge) -> Result<ObjId> {
    match doc.get(ROOT, TEXT_KEY)? {
        Some((automerge::Value::Object(ObjType::Text), id)) => Ok(id),
        _ => bail!("the document has no text under `{TEXT_KEY}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_parse_in_both_shapes_and_replay() {
        let edits = parse(br#"[[0,0,"hello"],[5,0," world"],[0,1],[0,0,"H"]]"#).unwrap();
        assert_eq!(edits[0], Edit::Insert(0, 0, "hello".into()));
        assert_eq!(edits[2], Edit::Delete(0, 1));
        assert_eq!(replay_to_string(&edits).unwrap(), "Hello world");
    }

    #[test]
    fn an_edit_past_the_end_is_refused() {
        let edits = parse(br#"[[0,0,"ab"],[1,5]]"#).unwrap();
        assert!(replay_to_string(&edits).is_err());
        assert!(parse(br#"[[0,"x"]]"#).is_err());
    }

    #[test]
    fn a_grown_document_holds_the_replayed_text_in_as_many_changes_as_asked() {
        let edits = parse(br#"[[0,0,"a"],[1,0,"b"],[2,0,"c"],[1,1],[1,0,"x"]]"#).unwrap();
        let grown = grow(&edits, 2, |_| {}).unwrap();
        assert_eq!(text_of(&grown.doc, &grown.text).unwrap(), "axc");
        // The text object's change, then 5 edits in changes of 2, 2 and 1.
        assert_eq!(grown.doc.get_changes(&[]).len(), 4);
        assert_eq!(text_object(&grown.doc).unwrap(), grown.text);
    }
}
