//! Group commit: one writer thread takes every write waiting for it and
//! makes them durable together, with one redb commit (one fsync), so peers
//! writing at the same time share the cost of the disk's flush instead of
//! queueing for it one by one.
//!
//! While a commit is flushing, new writes gather in the queue; the next
//! commit takes them all. Nobody waits on purpose: a lone write commits at
//! once. If anything in a group fails, the group is rolled back and each
//! write runs again in a transaction of its own, so one bad write fails
//! alone.
//!
//! A write may also be *lazy*: committed, but made durable only by the
//! next durable commit (redb's `Durability::None`). A group of lazy writes
//! costs no fsync; a crash before the next durable commit loses them whole,
//! so they are for work that may be lost, such as a snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::{Durability, WriteTransaction};
use tokio::sync::oneshot;
use tracing::warn;

use super::{Store, StoreError};

/// One write: what it does inside the group's transaction. It may run
/// twice (in the group, then alone), so it only reads what it captured.
pub(crate) type Write = Box<dyn Fn(&Store, &WriteTransaction) -> Result<(), StoreError> + Send>;

/// Most writes in one commit: bounds a commit's size and how long the
/// first write of a group waits for the last.
const MAX_GROUP: usize = 1024;

struct Job {
    write: Write,
    durable: bool,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The writer thread and its queue. Dropping it lets the thread finish
/// what is queued, then waits for it.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the writer thread for `store`; it counts its durable
    /// commits (groups, not writes) in `commits`.
    pub(crate) fn start(store: Store, commits: Arc<AtomicU64>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rapport-commit".to_owned())
            .spawn(move || run(&store, &jobs, &commits))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Runs `write` in the next commit; resolves once that commit is
    /// durable (or failed).
    pub(crate) async fn write(&self, write: Write) -> Result<(), StoreError> {
        self.submit(write, true)
            .await
            .unwrap_or(Err(StoreError::WriterGone))
    }

    /// Queues `write` now; the receiver gets its result. A write that is
    /// not `durable` is lazy (see the module docs).
    pub(crate) fn submit(
        &self,
        write: Write,
        durable: bool,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, result) = oneshot::channel();
        if let Some(queue) = &self.queue {
            // A send fails only once the thread is gone; `done` is then
            // dropped and the receiver sees it.
            let _ = queue.send(Job {
                write,
                durable,
                done,
            });
        }
        result
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("the storage writer thread panicked");
        }
    }
}

fn run(store: &Store, jobs: &mpsc::Receiver<Job>, commits: &AtomicU64) {
    while let Some(first) = crate::memory::next_waiting(jobs) {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let durable = group.iter().any(|job| job.durable);
        match commit(store, group.iter().map(|job| &job.write), durable) {
            Ok(()) => {
                if durable {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                for job in group {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(error) if group.len() == 1 => {
                let _ = group.pop().map(|job| job.done.send(Err(error)));
            }
            Err(_) => {
                for job in group {
                    let alone = commit(store, std::iter::once(&job.write), job.durable);
                    if alone.is_ok() && job.durable {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = job.done.send(alone);
                }
            }
        }
    }
}

/// Runs `writes` in one transaction and commits it, durably or lazily; on
/// any error the transaction is dropped, which rolls it back.
fn commit<'a>(
    store: &Store,
    writes: impl Iterator<Item = &'a Write>,
    durable: bool,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write()?;
    if !durable {
        tx.set_durability(Durability::None)
            .map_err(|e| store.err(e))?;
    }
    for write in writes {
        write(store, &tx)?;
    }
    tx.commit().map_err(|e| store.err(e))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rapport_protocol::ids::DocumentId;

    use super::*;
    use crate::storage::tests::{change, temp_dir};

    fn append(id: DocumentId, n: u8) -> Write {
        let changes = vec![change(n, &[])];
        Box::new(move |store, tx| store.append_changes(tx, id, &changes, &[]))
    }

    /// A write that holds the writer thread until `release` is dropped (it
    /// may run twice: in a group, then alone).
    fn held(id: DocumentId) -> (Write, std::sync::mpsc::Sender<()>) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let write: Write = Box::new(move |store, tx| {
            let _ = wait.lock().unwrap().recv();
            store.append_changes(tx, id, &[change(0, &[])], &[])
        });
        (write, release)
    }

    #[tokio::test]
    async fn writes_waiting_together_share_one_commit() {
        let store = Store::open(&temp_dir("group-share")).unwrap();
        let commits = Arc::new(AtomicU64::new(0));
        let writer = GroupCommit::start(store.clone(), Arc::clone(&commits)).unwrap();
        let doc = DocumentId::from_bytes([1; 16]);
        let (first, release) = held(doc);
        let mut results = vec![writer.submit(first, true)];
        results.extend((1..10).map(|n| writer.submit(append(doc, n), true)));
        drop(release);
        for result in results {
            result.await.unwrap().unwrap();
        }
        assert_eq!(store.load_document(doc).unwrap().changes.len(), 10);
        // The held write may have gone alone; the nine queued behind it
        // share a commit.
        let commits = commits.load(Ordering::Relaxed);
        assert!(commits <= 2, "{commits} commits");
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone() {
        let store = Store::open(&temp_dir("group-fail")).unwrap();
        let writer = GroupCommit::start(store.clone(), Arc::default()).unwrap();
        let doc = DocumentId::from_bytes([2; 16]);
        let (first, release) = held(doc);
        let first = writer.submit(first, true);
        let bad = writer.submit(Box::new(|store, _| Err(store.corrupt("changes"))), true);
        let good = writer.submit(append(doc, 1), true);
        drop(release);
        first.await.unwrap().unwrap();
        assert!(matches!(
            bad.await.unwrap(),
            Err(StoreError::Corrupt { .. })
        ));
        good.await.unwrap().unwrap();
        assert_eq!(store.load_document(doc).unwrap().changes.len(), 2);
    }

    #[tokio::test]
    async fn a_saved_document_becomes_the_snapshot_of_the_changes_it_holds() {
        let store = Store::open(&temp_dir("group-snapshot")).unwrap();
        let writer = GroupCommit::start(store.clone(), Arc::default()).unwrap();
        let doc = DocumentId::from_bytes([4; 16]);
        let changes: Vec<_> = (1..=5).map(|n| change(n, &[n - 1])).collect();
        store.append(doc, &changes, &[]).unwrap();
        let held: Vec<_> = changes[..3].iter().map(|c| c.hash).collect();
        writer
            .write(Store::snapshotting(
                doc,
                Arc::from(&b"saved"[..]),
                held.clone(),
            ))
            .await
            .unwrap();
        let stored = store.load_document(doc).unwrap();
        assert_eq!(stored.snapshot.as_deref(), Some(&b"saved"[..]));
        let compacted: Vec<_> = stored.compacted.iter().map(|(h, _)| *h).collect();
        assert_eq!(compacted, held);
        assert_eq!(stored.compacted[1].1, changes[1].deps);
        let left: Vec<_> = stored.changes.iter().map(|c| c.hash).collect();
        assert_eq!(left, vec![changes[3].hash, changes[4].hash]);
    }

    #[tokio::test]
    async fn a_lazy_write_commits_without_a_durable_commit_of_its_own() {
        let dir = temp_dir("group-lazy");
        let store = Store::open(&dir).unwrap();
        let commits = Arc::new(AtomicU64::new(0));
        let writer = GroupCommit::start(store.clone(), Arc::clone(&commits)).unwrap();
        let doc = DocumentId::from_bytes([5; 16]);
        writer.submit(append(doc, 1), false).await.unwrap().unwrap();
        assert_eq!(store.load_document(doc).unwrap().changes.len(), 1);
        assert_eq!(commits.load(Ordering::Relaxed), 0);
        writer.write(append(doc, 2)).await.unwrap();
        assert_eq!(commits.load(Ordering::Relaxed), 1);
        drop(writer);
        drop(store);
        let reopened = Store::open(&dir).unwrap();
        assert_eq!(reopened.load_document(doc).unwrap().changes.len(), 2);
    }

    #[tokio::test]
    async fn writes_after_the_writer_stops_fail_clearly() {
        let store = Store::open(&temp_dir("group-gone")).unwrap();
        let mut writer = GroupCommit::start(store, Arc::default()).unwrap();
        writer.queue.take();
        let doc = DocumentId::from_bytes([3; 16]);
        assert!(matches!(
            writer.write(append(doc, 1)).await,
            Err(StoreError::WriterGone)
        ));
    }
}
