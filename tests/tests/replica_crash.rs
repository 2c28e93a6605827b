//! Issue #9, replica crash: a replica writing without pause is killed with
//! SIGKILL, again and again on the same home folder, at seeded random
//! moments aimed inside an ordinary write and inside a compaction. After
//! every kill the replica opens, every edit that returned is there with its
//! value, and nothing else is but the one edit in progress.
//!
//! The replica runs as `replica-child HOME burst …` (see that binary). It
//! says `BEGIN` before each edit, naming whether the edit will compact the
//! document, and `EDITED` once it returned. The test waits for a seeded
//! number of `BEGIN`s of the kind it aims at, sleeps a seeded part of the
//! last such edit's duration (its last quarter, when aiming at a
//! compaction's commit), and kills. Where the kill landed is
//! then read from the durable state, not from timing: an edit whose change
//! is stored while its document still has all its change rows beside the
//! snapshot died during its compaction. Kills go on until both a write and
//! a compaction were interrupted, so the test cannot pass without testing.
//!
//! Seeds: 1, 2 and 3 by default; `RAPPORT_CRASH_SEEDS=7,8,9` runs others.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use automerge::{ROOT, ReadDoc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rapport_client::Repo;
use rapport_protocol::ids::DocumentId;
use rapport_tests::relay::TempDir;

/// Documents the replica writes to in turn.
const DOCS: usize = 2;
/// Bytes per edit: snapshots grow to hundreds of KB, so that a compaction
/// (encoding the snapshot, then one write transaction) takes tens of ms.
const PAD: usize = 4096;
const MIN_KILLS: usize = 12;
const MAX_KILLS: usize = 24;
/// A guard against hangs only.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn every_edit_that_returned_survives_sigkill_mid_write_and_mid_compaction() -> Result<()> {
    for seed in seeds()? {
        kill_repeatedly(seed)
            .with_context(|| format!("seed {seed} (rerun with RAPPORT_CRASH_SEEDS={seed})"))?;
    }
    Ok(())
}

fn seeds() -> Result<Vec<u64>> {
    match std::env::var("RAPPORT_CRASH_SEEDS") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .context("RAPPORT_CRASH_SEEDS: comma-separated u64s")
            })
            .collect(),
        Err(_) => Ok(vec![1, 2, 3]),
    }
}

/// What an edit does besides storing its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Write,
    Compact,
}

/// Where a kill landed, read from what was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landed {
    /// Between two edits (the last one had returned).
    BetweenEdits,
    /// Inside an edit, before its change was durable: it is absent.
    BeforeCommit,
    /// Inside an edit, after its commit (and compaction, if any).
    AfterCommit,
    /// Inside a compacting edit: its change was durable, the compaction
    /// had not committed and left the change rows as they were.
    DuringCompaction,
}

/// An edit that returned.
#[derive(Debug, Clone)]
struct Edit {
    tag: String,
    i: u64,
    doc: DocumentId,
}

impl Edit {
    fn field(&self) -> String {
        format!("{}-{}", self.tag, self.i)
    }
}

/// Where in which kind of edit a kill is aimed.
#[derive(Debug, Clone, Copy)]
enum Aim {
    /// Anywhere in an ordinary write.
    Write,
    /// Anywhere in a compacting edit (mostly the snapshot's encoding).
    Compaction,
    /// The last quarter of a compacting edit, where its transaction
    /// commits.
    CompactionCommit,
}

impl Aim {
    fn kind(self) -> Kind {
        match self {
            Aim::Write => Kind::Write,
            Aim::Compaction | Aim::CompactionCommit => Kind::Compact,
        }
    }

    /// The delay after `BEGIN`, in microseconds, given how long the last
    /// edit of the kind took (compactions grow with the document, so the
    /// last one says more than an average).
    fn delay(self, took: u64, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Aim::Write | Aim::Compaction => rng.random_range(0..=took),
            Aim::CompactionCommit => rng.random_range(took * 3 / 4..=took),
        }
    }
}

fn kill_repeatedly(seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let home = TempDir::new("replica-crash");
    let mut returned = Vec::new();
    let mut took = BTreeMap::new();
    let mut landed = Vec::new();
    for kill in 0..MAX_KILLS {
        let aim = [Aim::CompactionCommit, Aim::Write, Aim::Compaction][kill % 3];
        let tag = format!("k{kill}");
        let (kind, at) = run_and_kill(home.path(), &tag, aim, &mut rng, &mut took, &mut returned)?;
        landed.push((kind, at));
        let compaction = landed.iter().any(|&(_, at)| at == Landed::DuringCompaction);
        let write = landed.iter().any(|&(kind, at)| {
            kind == Kind::Write && matches!(at, Landed::BeforeCommit | Landed::AfterCommit)
        });
        if kill + 1 >= MIN_KILLS && compaction && write {
            eprintln!(
                "seed {seed}: {} kills, {} returned edits all present; landed {landed:?}",
                kill + 1,
                returned.len()
            );
            return Ok(());
        }
    }
    bail!(
        "after {MAX_KILLS} kills, none landed inside both a write and a compaction, \
         so the test proved less than it claims: {landed:?}"
    )
}

/// Starts the replica on `home`, kills it as `aim` says, checks every
/// returned edit, and says where the kill landed (and the kind of the edit
/// it interrupted). `took` holds the last duration of each kind of edit, in
/// microseconds.
fn run_and_kill(
    home: &Path,
    tag: &str,
    aim: Aim,
    rng: &mut ChaCha8Rng,
    took: &mut BTreeMap<Kind, u64>,
    returned: &mut Vec<Edit>,
) -> Result<(Kind, Landed)> {
    let mut child = ReplicaProcess::spawn(home, tag)?;
    let skip = rng.random_range(0..=2);
    let mut begun: BTreeMap<u64, (DocumentId, Kind)> = BTreeMap::new();
    let mut edited = BTreeSet::new();
    let mut seen = 0;
    loop {
        let line = child
            .next_line()?
            .context("replica-child ended by itself")?;
        match parse(&line)? {
            Line::Begin(i, doc, kind) => {
                begun.insert(i, (doc, kind));
                if kind != aim.kind() {
                    continue;
                }
                let Some(&last_took) = took.get(&kind) else {
                    continue;
                };
                if seen == skip {
                    let delay = aim.delay(last_took, rng);
                    std::thread::sleep(Duration::from_micros(delay));
                    child.sigkill()?;
                    break;
                }
                seen += 1;
            }
            Line::Edited(i, micros) => {
                let (_, kind) = begun.get(&i).context("EDITED before BEGIN")?;
                took.insert(*kind, micros);
                edited.insert(i);
            }
        }
    }
    // What the replica said before it died.
    while let Some(line) = child.next_line()? {
        match parse(&line)? {
            Line::Begin(i, doc, kind) => {
                begun.insert(i, (doc, kind));
            }
            Line::Edited(i, _) => {
                edited.insert(i);
            }
        }
    }
    returned.extend(edited.iter().map(|&i| Edit {
        tag: tag.to_owned(),
        i,
        doc: begun[&i].0,
    }));
    let (&last, &(doc, kind)) = begun.last_key_value().context("no edit began")?;

    let repo = Repo::open(home).context("the replica does not open after SIGKILL")?;
    for edit in returned.iter() {
        let value = field(&repo, edit.doc, &edit.field())?;
        let value = value.with_context(|| format!("edit {edit:?} returned but is gone"))?;
        ensure!(
            value.starts_with(&format!("{}:{}:", edit.tag, edit.i)) && value.len() == PAD,
            "edit {edit:?} has the wrong value"
        );
    }
    // Nothing is there that did not return but the edit in progress.
    let docs: BTreeSet<DocumentId> = begun.values().map(|&(doc, _)| doc).collect();
    let prefix = format!("{tag}-");
    for &d in &docs {
        let fields: Vec<String> = repo.read(d, |d| {
            d.keys(ROOT).filter(|k| k.starts_with(&prefix)).collect()
        })?;
        for name in fields {
            let i: u64 = name[prefix.len()..].parse()?;
            ensure!(
                edited.contains(&i) || i == last,
                "{d} holds edit {i}, which neither returned nor was in progress"
            );
        }
    }
    let present = field(&repo, doc, &format!("{tag}-{last}"))?.is_some();
    let rows = repo
        .store()
        .load(doc)?
        .map_or(0, |stored| stored.changes.len());
    let at = if edited.contains(&last) {
        Landed::BetweenEdits
    } else if !present {
        Landed::BeforeCommit
    } else if kind == Kind::Compact && rows > 0 {
        Landed::DuringCompaction
    } else {
        Landed::AfterCommit
    };
    Ok((kind, at))
}

/// A string field of a document, if it is there.
fn field(repo: &Repo, doc: DocumentId, name: &str) -> Result<Option<String>> {
    Ok(repo.read(doc, |d| {
        d.get(ROOT, name)
            .ok()
            .flatten()
            .and_then(|(v, _)| v.as_str().map(str::to_owned))
    })?)
}

enum Line {
    Begin(u64, DocumentId, Kind),
    Edited(u64, u64),
}

fn parse(line: &str) -> Result<Line> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["BEGIN", i, doc, kind] => Ok(Line::Begin(
            i.parse()?,
            doc.parse()?,
            match *kind {
                "write" => Kind::Write,
                "compact" => Kind::Compact,
                other => bail!("unknown kind {other}"),
            },
        )),
        ["EDITED", i, micros] => Ok(Line::Edited(i.parse()?, micros.parse()?)),
        _ => bail!("unexpected line from replica-child: {line:?}"),
    }
}

/// `replica-child HOME burst TAG DOCS PAD`, killed on drop.
struct ReplicaProcess {
    child: Child,
    lines: Receiver<String>,
}

impl ReplicaProcess {
    fn spawn(home: &Path, tag: &str) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_replica-child"))
            .arg(home)
            .args(["burst", tag, &DOCS.to_string(), &PAD.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take();
        let (tx, lines) = std::sync::mpsc::channel();
        let mut this = Self { child, lines };
        let stdout = stdout.context("no stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        for _ in 0..DOCS {
            let line = this.next_line()?.context("replica-child did not start")?;
            ensure!(line.starts_with("DOC "), "unexpected first line {line:?}");
        }
        Ok(this)
    }

    /// The next line, `None` once the child's stdout is closed.
    fn next_line(&mut self) -> Result<Option<String>> {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => Ok(Some(line)),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => bail!("replica-child said nothing for {PATIENCE:?}"),
        }
    }

    fn sigkill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
