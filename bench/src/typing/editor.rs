//! A typing editor of `rapport bench typing`: a thin peer that types
//! hand-built single-character changes at its rate and times the changes
//! of the others as they arrive (the *forward* latency).

use std::collections::HashSet;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use automerge::legacy::{ElementId, Key, ObjectId, Op, OpId, OpType, SortedVec};
use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ObjId, ScalarValue};
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::wire::Message;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite;

use super::{Phase, Shared, lock};
use crate::peer::{self, Link, ThinDoc};

/// The parts of a typed change that do not change: the text object.
pub(super) struct Template {
    text: OpId,
}

impl Template {
    pub(super) fn new(text: &ObjId) -> Result<Self> {
        match text {
            ObjId::Id(counter, actor, _) => Ok(Self {
                text: OpId(*counter, actor.clone()),
            }),
            ObjId::Root => bail!("the text is not an object"),
        }
    }

    /// A change inserting `c` after `after` (the text's start if `None`).
    pub(super) fn insert(
        &self,
        actor: &ActorId,
        seq: u64,
        start_op: u64,
        after: Option<u64>,
        c: char,
        deps: Vec<ChangeHash>,
    ) -> Result<Change> {
        let key = match after {
            Some(counter) => ElementId::Id(OpId(counter, actor.clone())),
            None => ElementId::Head,
        };
        let op = Op {
            action: OpType::Put(ScalarValue::Str(c.to_string().into())),
            obj: ObjectId::Id(self.text.clone()),
            key: Key::Seq(key),
            pred: SortedVec::new(),
            insert: true,
        };
        let expanded = ExpandedChange {
            operations: vec![op],
            actor_id: actor.clone(),
            hash: None,
            seq,
            start_op: NonZeroU64::new(start_op).ok_or_else(|| anyhow!("op counter at zero"))?,
            time: i64::try_from(peer::now().0 / 1000).unwrap_or(0),
            message: None,
            deps,
            extra_bytes: Vec::new(),
            author: None,
        };
        Ok(Change::from(expanded))
    }
}

/// A change of another editor as it reached this one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Forwarded {
    /// The editor that typed it.
    pub(super) from: usize,
    /// From its frame written to a frame carrying it read here.
    pub(super) latency: Duration,
}

/// One typing peer.
pub(super) struct Editor {
    pub(super) n: usize,
    pub(super) link: Link,
    pub(super) thin: ThinDoc,
    pub(super) shared: Arc<Shared>,
    pub(super) template: Arc<Template>,
    pub(super) actor: ActorId,
    pub(super) period: Duration,
    pub(super) ready: Arc<AtomicUsize>,
}

impl Editor {
    /// Runs until the phase is `Done`; returns the changes of the others
    /// as they reached this editor.
    pub(super) async fn run(mut self, mut phase: watch::Receiver<Phase>) -> Result<Vec<Forwarded>> {
        let hello = self.thin.hello(&self.link.server);
        self.link.socket.send(peer::frame(&hello)).await?;
        let mut forward = Vec::new();
        let mut seen: HashSet<ChangeHash> = HashSet::new();
        let mut heard = false;
        let mut ticker: Option<tokio::time::Interval> = None;
        let mut until = tokio::time::Instant::now();
        let mut seq = 0;
        let mut last: Option<u64> = None;
        let text = "the quick brown fox jumps over the lazy dog. ";
        loop {
            tokio::select! {
                changed = phase.changed() => {
                    if changed.is_err() { break; }
                    match *phase.borrow_and_update() {
                        Phase::Typing { until: end } => {
                            until = end;
                            // Editors start at different moments within one period.
                            let offset = self.period.mul_f64(rand::random::<f64>());
                            let mut interval = tokio::time::interval_at(
                                tokio::time::Instant::now() + offset,
                                self.period,
                            );
                            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                            ticker = Some(interval);
                        }
                        Phase::Done => break,
                        Phase::Setup => {}
                    }
                }
                _ = async { ticker.as_mut().map(|t| t.tick()).expect("guarded").await }, if ticker.is_some() => {
                    if tokio::time::Instant::now() >= until {
                        ticker = None;
                        continue;
                    }
                    seq += 1;
                    let start_op = self.shared.next_op.fetch_add(1, Ordering::Relaxed);
                    let c = text.chars().nth((seq as usize + self.n) % text.len()).unwrap_or('x');
                    let change = self.template.insert(&self.actor, seq, start_op, last, c, self.thin.heads())?;
                    last = Some(start_op);
                    seen.insert(change.hash());
                    let out = self.thin.add_local(&change)?;
                    lock(&self.shared.sent).insert(change.hash(), (Instant::now(), self.n));
                    self.shared.typed.fetch_add(1, Ordering::Release);
                    for message in out {
                        self.link.socket.send(peer::frame(&message)).await?;
                    }
                }
                frame = self.link.socket.next() => {
                    let arrived = Instant::now();
                    let Some(frame) = frame else { bail!("the server closed editor {}'s connection", self.n) };
                    let tungstenite::Message::Binary(bytes) = frame? else { continue };
                    let Ok(Message::Sync(m)) = Message::decode(&bytes) else { continue };
                    for change in peer::change_hashes(&m)? {
                        if !seen.insert(change.hash) {
                            continue;
                        }
                        if let Some((sent, from)) = lock(&self.shared.sent).get(&change.hash).copied()
                            && from != self.n
                        {
                            forward.push(Forwarded {
                                from,
                                latency: arrived.saturating_duration_since(sent),
                            });
                            self.shared.forwarded.fetch_add(1, Ordering::Release);
                        }
                    }
                    for reply in self.thin.receive(&m)? {
                        self.link.socket.send(peer::frame(&reply)).await?;
                    }
                    if !heard {
                        heard = true;
                        self.ready.fetch_add(1, Ordering::Release);
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.link.socket.close(None)).await;
        Ok(forward)
    }
}

/// Two characters typed one after the other by one editor into `base`;
/// the second's op counter is `second_op`.
#[cfg(test)]
pub(super) fn typed_pair(base: &super::Base, chars: [char; 2], second_op: u64) -> (Change, Change) {
    let template = Template::new(&base.text).unwrap();
    let actor = ActorId::random();
    let first = template
        .insert(
            &actor,
            1,
            base.max_op + 1,
            None,
            chars[0],
            base.heads.clone(),
        )
        .unwrap();
    let second = template
        .insert(
            &actor,
            2,
            second_op,
            Some(base.max_op + 1),
            chars[1],
            vec![first.hash()],
        )
        .unwrap();
    (first, second)
}

#[cfg(test)]
mod tests {
    use automerge::ReadDoc;

    use super::super::base::base_of;
    use super::typed_pair;
    use crate::trace;

    #[test]
    fn typed_changes_apply_as_text_inserts() {
        let grown = trace::grow(&trace::parse(br#"[[0,0,"ab"]]"#).unwrap(), 1, |_| {}).unwrap();
        let base = base_of(grown.doc, "t".into()).unwrap();
        let (first, second) = typed_pair(&base, ['x', 'y'], base.max_op + 5);
        let mut doc = base.doc.clone();
        doc.apply_changes([first, second]).unwrap();
        assert_eq!(doc.text(&base.text).unwrap(), "xyab");
    }
}
