//! The document the editors of `rapport bench typing` (and `cluster`)
//! type into: pre-grown with the automerge-paper trace, or empty, and put
//! on the server by one peer before they start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use automerge::{Automerge, Change, ChangeHash, ObjId};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::sync::{DocumentSync, Effect};
use rapport_protocol::wire::Message;
use tokio_tungstenite::tungstenite;

use crate::auth::Auth;
use crate::peer::{self, Link};
use crate::progress::{Progress, bar};
use crate::{connect_peer, trace};

/// Which document the editors type into.
#[derive(Debug, Clone, Args)]
pub struct DocumentArgs {
    /// Start from a document holding only an empty text, to compare with
    /// the pre-grown one (flat as history grows?).
    #[arg(long)]
    pub(super) empty: bool,
    /// The editing trace (default: ../shared/data/automerge-paper-edits.json.gz).
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
    /// Pre-grow with only the first N edits of the trace.
    #[arg(long, value_name = "N")]
    trace_edits: Option<usize>,
    /// Edits per change when pre-growing: 1 makes each keystroke its own
    /// change, as typed.
    #[arg(long, default_value_t = 1)]
    pub(super) edits_per_change: usize,
}

/// The document the editors type into, as it was before they started.
pub(super) struct Base {
    pub(super) doc: Automerge,
    pub(super) text: ObjId,
    pub(super) heads: Vec<ChangeHash>,
    pub(super) max_op: u64,
    pub(super) changes: usize,
    pub(super) saved_bytes: usize,
    pub(super) what: String,
}

/// The pre-grown document, from a cache file in the temp folder when one
/// was saved by an earlier run with the same trace and settings.
pub(super) fn prepare_base(args: &DocumentArgs, progress: &mut Progress) -> Result<Base> {
    if args.empty {
        let grown = trace::grow(&[], 1, |_| {})?;
        return base_of(grown.doc, "empty document".to_owned());
    }
    let path = args.trace.clone().unwrap_or_else(trace::default_path);
    let mut edits = trace::read(&path)?;
    if let Some(n) = args.trace_edits {
        edits.truncate(n);
    }
    let what = format!(
        "pre-grown ({} trace edits, {} per change)",
        edits.len(),
        args.edits_per_change.max(1)
    );
    let cache = std::env::temp_dir().join(format!(
        "rapport-bench-trace-{}-{}.automerge",
        edits.len(),
        args.edits_per_change.max(1)
    ));
    if let Ok(bytes) = std::fs::read(&cache) {
        progress.step(format!(
            "loading the pre-grown document from {}",
            cache.display()
        ));
        if let Ok(doc) = Automerge::load(&bytes) {
            return base_of(doc, what);
        }
    }
    progress.step(format!(
        "pre-growing the document with {} edits ({} per change)",
        edits.len(),
        args.edits_per_change.max(1)
    ));
    let started = Instant::now();
    let total = edits.len();
    let grown = trace::grow(&edits, args.edits_per_change, |n| {
        progress.update(format!("{} {n}/{total} edits", bar(n as f64, total as f64)));
    })?;
    progress.clear();
    progress.step(format!("pre-grown in {:.1?}", started.elapsed()));
    let expected = trace::replay_to_string(&edits)?;
    if trace::text_of(&grown.doc, &grown.text)? != expected {
        bail!("the pre-grown text differs from the trace replayed on a string");
    }
    let _ = std::fs::write(&cache, grown.doc.save());
    base_of(grown.doc, what)
}

pub(super) fn base_of(doc: Automerge, what: String) -> Result<Base> {
    let text = trace::text_object(&doc)?;
    let all = doc.get_changes(&[]);
    let max_op = all.iter().map(Change::max_op).max().unwrap_or(0);
    let changes = all.len();
    Ok(Base {
        text,
        heads: doc.get_heads(),
        max_op,
        changes,
        saved_bytes: doc.save().len(),
        doc,
        what,
    })
}

/// One peer puts the whole document on the server, with automerge's own
/// sync (as any replica would), and waits until the server has it.
pub(super) async fn upload(
    url: &str,
    id: DocumentId,
    base: &Base,
    auth: Option<&Arc<Auth>>,
) -> Result<()> {
    let link = connect_peer(url, peer::peer_name("uploader", 0), auth).await?;
    let Link {
        mut socket,
        us,
        server,
    } = link;
    let mut sync = DocumentSync::new(id, us, base.doc.clone());
    sync.handle_peer_connected(server.clone(), peer::now());
    let work = async {
        loop {
            while let Some(effect) = sync.poll_effect() {
                if let Effect::Send(message) = effect {
                    socket.send(peer::frame(&message)).await?;
                }
            }
            if sync.is_in_sync_with(&server) {
                return Ok::<(), anyhow::Error>(());
            }
            let frame = socket
                .next()
                .await
                .ok_or_else(|| anyhow!("the server closed the connection during the upload"))??;
            if let tungstenite::Message::Binary(bytes) = frame
                && let Ok(Message::Sync(m)) = Message::decode(&bytes)
            {
                sync.handle_sync(&m, peer::now())?;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), work)
        .await
        .map_err(|_| anyhow!("the upload took over 10 minutes"))??;
    let _ = socket.close(None).await;
    Ok(())
}
