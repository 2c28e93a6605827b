//! The relay's work for itself, off any peer's way: compactions and saving
//! documents nobody has open. It runs on one thread of its own at a lower
//! CPU priority, one job at a time, so that a burst of it (every busy
//! document reaching its compaction at once) loads one document at a time
//! instead of all of them, never takes more than one core, and yields that
//! core to the workers answering peers whenever they want it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use tracing::warn;

type Job = Box<dyn FnOnce() + Send>;

/// How much lower than the relay's own the background thread's priority
/// is, as a nice value (at most 19, the lowest).
const NICENESS: i32 = 10;

/// The background thread; it ends when every copy of this is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Background {
    jobs: mpsc::Sender<Job>,
}

impl Background {
    pub(crate) fn start() -> std::io::Result<Self> {
        let (jobs, queued) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rapport-background".into())
            .spawn(move || {
                lower_priority();
                while let Some(job) = crate::memory::next_waiting(&queued) {
                    // A job that panics fails alone: its caller sees it
                    // never finished, and the next job runs.
                    if catch_unwind(AssertUnwindSafe(job)).is_err() {
                        warn!("a background job panicked");
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Queues `work` behind the jobs queued before it; the future gives
    /// its result, or `None` when it panicked or the thread is gone.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        // A job that cannot be queued is dropped, and `result` says so.
        let _ = self.jobs.send(job);
        async move { result.await.ok() }
    }
}

/// Lowers the calling thread's CPU priority (on Linux, a nice value is a
/// thread's own). Where that is refused, the work runs at the usual one.
fn lower_priority() {
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(thread), lowered(current)) {
        warn!(error = %e, "cannot lower the background thread's priority");
    }
}

fn lowered(priority: i32) -> i32 {
    (priority + NICENESS).min(19)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panic_fails_only_its_own() {
        let background = Background::start().unwrap();
        let (first, second) = tokio::join!(background.run(|| 1), background.run(|| 2));
        assert_eq!((first, second), (Some(1), Some(2)));
        let panicked = background
            .run(|| -> u8 { panic!("a job that fails") })
            .await;
        assert_eq!(panicked, None);
        assert_eq!(background.run(|| 3).await, Some(3));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_runs_at_a_lower_priority() {
        let ours = rustix::process::getpriority_process(None).unwrap();
        let background = Background::start().unwrap();
        let theirs = background
            .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(theirs, lowered(ours));
        assert!(theirs > ours || ours == 19);
    }
}
