//! Memory the relay no longer uses goes back to the system.
//!
//! mimalloc (the relay binary's allocator) keeps each thread's freed pages
//! in that thread's heap. It hands them back when that thread next works,
//! so a thread that goes quiet keeps what it freed. And a block one thread
//! frees for another waits in the other's heap until that one allocates.
//! So once documents leave memory, every thread is asked to collect its
//! heap the next time it is about to wait for work:
//! - the runtime's workers as they park,
//! - the storage writer and the background thread when their queues stay
//!   empty.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How many times collecting has been asked for.
static ASKED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The value of [`ASKED`] this thread last collected for.
    static COLLECTED: Cell<u64> = const { Cell::new(0) };
}

/// Asks every thread to hand back the memory it holds freed, and this one
/// does so now.
pub(crate) fn hand_back_freed_memory() {
    ASKED.fetch_add(1, Ordering::Relaxed);
    collect_if_asked();
}

/// Collects this thread's heap if that was asked since it last did; for a
/// thread about to wait for work. Costs an atomic load otherwise.
pub fn collect_if_asked() {
    let asked = ASKED.load(Ordering::Relaxed);
    if COLLECTED.with(|collected| collected.replace(asked)) != asked {
        collect();
    }
}

/// How often a thread waiting on a queue checks whether it should collect.
const WAITING_CHECK: Duration = Duration::from_secs(1);

/// The next item on `queue`, collecting this thread's heap if asked while
/// it waits; `None` once every sender is gone.
pub(crate) fn next_waiting<T>(queue: &mpsc::Receiver<T>) -> Option<T> {
    loop {
        match queue.recv_timeout(WAITING_CHECK) {
            Ok(item) => return Some(item),
            Err(mpsc::RecvTimeoutError::Timeout) => collect_if_asked(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// `mi_collect(true)`: this thread's freed pages, and those of threads that
/// ended, go back to the system. Costs nothing much when mimalloc is not
/// the allocator (a program that embeds the relay with its own): it then
/// holds nothing.
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any
    // thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// mimalloc's `mi_option_purge_delay` (mimalloc.h; the same in v2 and v3).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc hand a freed page back at once rather than a second later,
/// unless the operator set `MIMALLOC_PURGE_DELAY`. Measured with `rapport
/// bench typing` on the pre-grown document at 16 editors: the relay's
/// resident memory 49.5 MiB against 63–69 MiB (peak 51 against 92–122 MiB),
/// with no CPU cost per change beyond the run-to-run spread. A delayed
/// purge waits for its thread's next allocation, which on a thread that
/// just went quiet is never.
#[allow(unsafe_code)]
pub fn purge_freed_pages_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option takes no pointers; mimalloc reads this
        // one each time it purges.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading an option takes no pointers.
        let before = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(
            before, 1000,
            "mimalloc v3's default purge delay is 1,000 ms"
        );
        purge_freed_pages_at_once();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 0);
    }

    #[test]
    fn a_thread_collects_once_for_each_request() {
        let collects = || {
            let before = COLLECTED.with(Cell::get);
            collect_if_asked();
            COLLECTED.with(Cell::get) != before
        };
        collects();
        assert!(!collects(), "nothing was asked since");
        ASKED.fetch_add(1, Ordering::Relaxed);
        assert!(collects());
        assert!(!collects());
    }
}
