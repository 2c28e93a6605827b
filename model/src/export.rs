//! An export of documents that reads without rapport: for each document its
//! automerge bytes (`ID.automerge`, which any automerge loads), its content
//! as JSON (`ID.json`) and, for a requirements document, its body as
//! Markdown (`ID.md`); and a `manifest.json` naming them all. Sans-IO: the
//! files come as names and bytes, and the caller writes them.

use automerge::{AutoSerde, Automerge};
use rapport_protocol::ids::DocumentId;
use serde::{Deserialize, Serialize};

use crate::record::{Header, Kind, Record, Requirements};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What an export holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"rapport-export"`.
    pub format: String,
    pub version: u32,
    /// The workspace the documents are of, when one.
    pub workspace: Option<String>,
    /// Unix milliseconds.
    pub exported_at: i64,
    /// Whose view of the workspace this is (a base58 key), or `"relay"`.
    pub exported_by: String,
    pub documents: Vec<Entry>,
}

/// One document of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// `customer`, `task`, `requirements`, `thread`; `None` for a document
    /// that holds no record.
    pub kind: Option<String>,
    /// The record's name or title.
    pub title: Option<String>,
    /// The heads the export holds, hex.
    pub heads: Vec<String>,
    pub files: Vec<String>,
}

impl Manifest {
    /// An empty manifest.
    pub fn new(workspace: Option<String>, exported_by: String, exported_at: i64) -> Self {
        Self {
            format: "rapport-export".into(),
            version: 1,
            workspace,
            exported_at,
            exported_by,
            documents: Vec::new(),
        }
    }

    /// The manifest as a file.
    pub fn file(&self) -> ExportFile {
        ExportFile {
            name: MANIFEST.into(),
            bytes: serde_json::to_vec_pretty(self).unwrap_or_default(),
        }
    }
}

/// The files of document `id`, and its entry for the manifest.
pub fn document_files(id: DocumentId, doc: &Automerge) -> (Entry, Vec<ExportFile>) {
    let kind = Header::read(doc).ok().map(|header| header.kind);
    let title = match Record::read(doc) {
        Ok(Record::Customer(c)) => Some(c.name),
        Ok(Record::Task(t)) => Some(t.title),
        Ok(Record::Requirements(r)) => Some(r.title),
        Ok(Record::Thread(_)) | Err(_) => None,
    };
    let mut files = vec![
        ExportFile {
            name: format!("{id}.automerge"),
            bytes: doc.save(),
        },
        ExportFile {
            name: format!("{id}.json"),
            bytes: serde_json::to_vec_pretty(&AutoSerde::from(doc)).unwrap_or_default(),
        },
    ];
    if kind == Some(Kind::Requirements)
        && let Ok(body) = Requirements::body_markdown(doc)
    {
        let heading = title
            .as_deref()
            .map(|t| format!("# {t}\n\n"))
            .unwrap_or_default();
        files.push(ExportFile {
            name: format!("{id}.md"),
            bytes: format!("{heading}{body}\n").into_bytes(),
        });
    }
    let entry = Entry {
        id: id.to_string(),
        kind: kind.map(|k| k.as_str().to_owned()),
        title,
        heads: doc.get_heads().iter().map(ToString::to_string).collect(),
        files: files.iter().map(|f| f.name.clone()).collect(),
    };
    (entry, files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Customer, Relationship, Requirements};

    #[test]
    fn a_document_exports_as_automerge_json_and_markdown() {
        let mut doc = automerge::AutoCommit::new();
        Requirements::new("Portal", "## Scope\nSingle sign-on")
            .write(&mut doc)
            .unwrap();
        let doc = doc.document().clone();
        let id = DocumentId::from_bytes([3; 16]);
        let (entry, files) = document_files(id, &doc);
        assert_eq!(entry.kind.as_deref(), Some("requirements"));
        assert_eq!(entry.files.len(), 3);
        let again = Automerge::load(&files[0].bytes).unwrap();
        assert_eq!(again.get_heads(), doc.get_heads());
        let json: serde_json::Value = serde_json::from_slice(&files[1].bytes).unwrap();
        assert_eq!(json["title"], "Portal");
        let markdown = String::from_utf8(files[2].bytes.clone()).unwrap();
        assert!(
            markdown.starts_with("# Portal\n\n## Scope\nSingle sign-on"),
            "{markdown}"
        );

        let mut customer = automerge::AutoCommit::new();
        Customer::new("Acme", Relationship::Client)
            .write(&mut customer)
            .unwrap();
        let (entry, files) = document_files(id, customer.document());
        assert_eq!((entry.title.as_deref(), files.len()), (Some("Acme"), 2));
    }
}
