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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::WriteTransaction;
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
        self.submit(write)
            .await
            .unwrap_or(Err(StoreError::WriterGone))
    }

    /// Queues `write` now; the receiver gets its result.
    fn submit(&self, write: Write) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, result) = oneshot::channel();
        if let Some(queue) = &self.queue {
            // A send fails only once the thread is gone; `done` is then
            // dropped and the receiver sees it.
            let _ = queue.send(Job { write, done });
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
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        match commit(store, group.iter().map(|job| &job.write)) {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for job in group {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(error) if group.len() == 1 => {
                let _ = group.pop().map(|job| job.done.send(Err(error)));
            }
            Err(_) => {
                for job in group {
                    let alone = commit(store, std::iter::once(&job.write));
                    if alone.is_ok() {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = job.done.send(alone);
                }
            }
        }
    }
}

/// Runs `writes` in one transaction and commits it; on any error the
/// transaction is dropped, which rolls it back.
fn commit<'a>(store: &Store, writes: impl Iterator<Item = &'a Write>) -> Result<(), StoreError> {
    let tx = store.begin_write()?;
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
        let mut results = vec![writer.submit(first)];
        results.extend((1..10).map(|n| writer.submit(append(doc, n))));
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
        let first = writer.submit(first);
        let bad = writer.submit(Box::new(|store, _| Err(store.corrupt("changes"))));
        let good = writer.submit(append(doc, 1));
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
