//! A replica in a process of its own, for tests that kill it.
//!
//! `replica-child HOME` opens (or creates) the replica in HOME, creates a
//! document, prints `CREATED <id>`, then for each line `edit N` on stdin
//! sets field `n` to N and prints `EDITED N` once the edit returned. The
//! test kills it with SIGKILL whenever it likes.
//!
//! `replica-child HOME burst TAG DOCS PAD` writes without pause until it is
//! killed. It opens (or creates) the replica, makes sure it holds DOCS
//! documents and prints `DOC <id>` for each, then for i = 0, 1, 2, … sets
//! field `TAG-i` of document i mod DOCS to a string of PAD bytes that
//! starts with `TAG:i:`. Around each edit it prints
//! `BEGIN <i> <document> <write|compact>` (`compact` when this edit makes
//! the replica fold the document's change rows into a new snapshot) and,
//! once the edit returned, `EDITED <i> <microseconds>`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use automerge::transaction::Transactable;
use rapport_client::Repo;
use rapport_protocol::ids::DocumentId;

/// The replica folds a document's change rows into a snapshot once an
/// append leaves this many (`COMPACT_AFTER_ROWS` in client-lib's repo.rs,
/// which is private). Every edit predicted to compact is checked, so a
/// change there fails the crash test loudly rather than silently.
const CLIENT_COMPACT_AFTER_ROWS: usize = 64;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let home = PathBuf::from(
        args.next()
            .context("usage: replica-child HOME [burst TAG DOCS PAD]")?,
    );
    let repo = match Repo::open(&home) {
        Ok(repo) => repo,
        Err(_) => Repo::init(&home)?,
    };
    match args.next().as_deref() {
        None => edits_from_stdin(&repo),
        Some("burst") => {
            let usage = "usage: replica-child HOME burst TAG DOCS PAD";
            let tag = args.next().context(usage)?;
            let docs: usize = args.next().context(usage)?.parse()?;
            let pad: usize = args.next().context(usage)?.parse()?;
            burst(&repo, &home, &tag, docs, pad)
        }
        Some(other) => bail!("unknown mode {other}"),
    }
}

fn edits_from_stdin(repo: &Repo) -> anyhow::Result<()> {
    let (id, ()) = repo.create(|tx| tx.put(automerge::ROOT, "n", 0i64).map(|_| ()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "CREATED {id}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let Some(n) = line.strip_prefix("edit ") else {
            continue;
        };
        let n: i64 = n.trim().parse()?;
        repo.change(id, |tx| tx.put(automerge::ROOT, "n", n))?;
        writeln!(out, "EDITED {n}")?;
        out.flush()?;
    }
    Ok(())
}

/// Edits until killed (or until stdout is gone, when the test died first).
fn burst(repo: &Repo, home: &Path, tag: &str, count: usize, pad: usize) -> anyhow::Result<()> {
    let mut docs = repo.document_ids()?;
    while docs.len() < count {
        let (id, ()) = repo.create(|tx| {
            tx.put(automerge::ROOT, "made by", "replica-child")
                .map(|_| ())
        })?;
        docs.push(id);
    }
    let mut out = std::io::stdout().lock();
    for id in &docs {
        writeln!(out, "DOC {id}")?;
    }
    out.flush()?;
    let mut rows = Vec::new();
    for &id in &docs {
        rows.push(change_rows(repo, id)?);
    }
    let mut filler = Filler::new(tag);
    for i in 0u64.. {
        let slot = (i % docs.len() as u64) as usize;
        let id = docs[slot];
        let compacts = rows[slot] + 1 >= CLIENT_COMPACT_AFTER_ROWS;
        let kind = if compacts { "compact" } else { "write" };
        writeln!(out, "BEGIN {i} {id} {kind}")?;
        out.flush()?;
        let value = filler.value(i, pad);
        let started = Instant::now();
        repo.change(id, |tx| {
            tx.put(automerge::ROOT, format!("{tag}-{i}"), value)
        })?;
        let took = started.elapsed().as_micros();
        if compacts {
            let left = change_rows(repo, id)?;
            ensure!(
                left == 0,
                "edit {i} should have compacted {id} in {} (it has {left} change rows): \
                 has the replica's compaction threshold changed from {CLIENT_COMPACT_AFTER_ROWS}?",
                home.display()
            );
            rows[slot] = 0;
        } else {
            rows[slot] += 1;
        }
        writeln!(out, "EDITED {i} {took}")?;
        out.flush()?;
    }
    Ok(())
}

/// A document's change rows beside its snapshot, as stored.
fn change_rows(repo: &Repo, id: DocumentId) -> anyhow::Result<usize> {
    Ok(repo
        .store()
        .load(id)?
        .map_or(0, |stored| stored.changes.len()))
}

/// Field values: `TAG:i:` then pseudo-random letters, so that snapshots do
/// not compress to nothing and compaction takes a while, as it does on a
/// real replica.
struct Filler {
    tag: String,
    state: u64,
}

impl Filler {
    fn new(tag: &str) -> Self {
        let state = tag.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self {
            tag: tag.to_owned(),
            state,
        }
    }

    fn value(&mut self, i: u64, pad: usize) -> String {
        let mut value = format!("{}:{i}:", self.tag);
        while value.len() < pad {
            // splitmix64
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            for byte in z.to_le_bytes() {
                if value.len() < pad {
                    value.push(char::from(b'a' + byte % 26));
                }
            }
        }
        value
    }
}
