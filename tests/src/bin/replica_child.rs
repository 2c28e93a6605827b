//! A replica in a process of its own, for tests that kill it.
//!
//! `replica-child HOME` opens (or creates) the replica in HOME, creates a
//! document, prints `CREATED <id>`, then for each line `edit N` on stdin
//! sets field `n` to N and prints `EDITED N` once the edit returned. The
//! test kills it with SIGKILL whenever it likes.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use automerge::transaction::Transactable;
use rapport_client::Repo;

fn main() -> anyhow::Result<()> {
    let home = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or_else(|| anyhow::anyhow!("usage: replica-child HOME"))?,
    );
    let repo = match Repo::open(&home) {
        Ok(repo) => repo,
        Err(_) => Repo::init(&home)?,
    };
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
