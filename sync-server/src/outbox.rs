//! A connection's queue of frames waiting to be written: bounded, filled by
//! any task, drained by the connection's writer.
//!
//! Written here rather than taken from `tokio::sync::mpsc`, whose bounded
//! channel allocates its first block of 32 slots (about 1.5 KiB with its
//! state) when it is made. Most of a relay's connections are idle, and an
//! empty outbox here costs one small allocation.
//!
//! A frame counts as queued until the writer has written it (not only
//! taken it): [`Drain::written`] waits for that, so that a sender can keep
//! no more than one frame of its own in the queue (the relay's pages of
//! the document list), and the relay's gauge of queued bytes
//! (`rapport_send_queue_bytes`) includes what the writer is writing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds its limit: the peer is not reading.
    Full,
    /// The writer has gone.
    Closed,
}

/// The sending side; cloned for every task that queues frames.
#[derive(Debug)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// The writer's side.
#[derive(Debug)]
pub(crate) struct Frames {
    shared: Arc<Shared>,
}

/// Waits for frames to be written; not a sender (it does not keep the
/// writer waiting for more frames).
#[derive(Debug)]
pub(crate) struct Drain {
    shared: Arc<Shared>,
}

/// The number of a queued frame, counted from 1 on each outbox.
pub(crate) type Ticket = u64;

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken when a frame is queued or the last sender leaves.
    ready: Notify,
    /// Woken when a frame was written or the writer has gone, if a
    /// [`Drain`] waits.
    drained: Notify,
    limit: usize,
    byte_limit: usize,
    /// Bytes queued or being written on every outbox of the relay.
    gauge: Arc<AtomicU64>,
}

#[derive(Debug)]
struct State {
    frames: VecDeque<Bytes>,
    /// The bytes of `frames`.
    bytes: usize,
    /// The bytes of the frame the writer took and has not written yet.
    writing: usize,
    /// Frames queued, and frames written, since the outbox was made.
    queued: Ticket,
    written: Ticket,
    /// A [`Drain`] waits for `written` to grow.
    watched: bool,
    senders: usize,
    reader_gone: bool,
}

/// Capacity kept by an outbox drained after a burst.
const KEPT_CAPACITY: usize = 16;

/// A queue of at most `limit` frames (at least one) and `byte_limit`
/// bytes (one frame of any size is always let into an empty queue), whose
/// bytes queued or being written are counted in `gauge` too.
pub(crate) fn outbox(limit: usize, byte_limit: usize, gauge: Arc<AtomicU64>) -> (Outbox, Frames) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            bytes: 0,
            writing: 0,
            queued: 0,
            written: 0,
            watched: false,
            senders: 1,
            reader_gone: false,
        }),
        ready: Notify::new(),
        drained: Notify::new(),
        limit: limit.max(1),
        byte_limit,
        gauge,
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        Frames { shared },
    )
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox {
    /// Queues a frame without waiting; its ticket is what
    /// [`Drain::written`] waits for.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<Ticket, Refused> {
        let mut state = self.shared.state();
        if state.reader_gone {
            return Err(Refused::Closed);
        }
        let too_many_bytes = !state.frames.is_empty()
            && state.bytes.saturating_add(frame.len()) > self.shared.byte_limit;
        if state.frames.len() >= self.shared.limit || too_many_bytes {
            return Err(Refused::Full);
        }
        state.bytes += frame.len();
        self.shared
            .gauge
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        state.frames.push_back(frame);
        state.queued += 1;
        let ticket = state.queued;
        drop(state);
        self.shared.ready.notify_one();
        Ok(ticket)
    }

    /// Something that waits for this outbox's frames to be written.
    pub(crate) fn drain(&self) -> Drain {
        Drain {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drain {
    /// Waits until the frame of `ticket` (and every frame before it) has
    /// been written: true then, false if the writer has gone first.
    pub(crate) async fn written(&self, ticket: Ticket) -> bool {
        loop {
            let notified = self.shared.drained.notified();
            tokio::pin!(notified);
            // Registered before the state is read: a frame written between
            // the check and the wait still wakes it.
            notified.as_mut().enable();
            {
                let mut state = self.shared.state();
                if state.written >= ticket {
                    return true;
                }
                if state.reader_gone {
                    return false;
                }
                state.watched = true;
            }
            notified.await;
        }
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl Frames {
    /// The next frame; `None` once every sender has gone and the queue is
    /// empty. The frame counts as queued until [`Frames::written`] (or the
    /// next call here).
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        self.written();
        loop {
            // `notify_one` keeps a permit when nobody waits, so a frame
            // queued between this check and the wait is not missed.
            let notified = self.shared.ready.notified();
            {
                let mut state = self.shared.state();
                if let Some(frame) = pop(&mut state) {
                    return Some(frame);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next frame if one is queued, as [`Frames::recv`].
    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        self.written();
        pop(&mut self.shared.state())
    }

    /// The frame last taken has been written (or given up on): it no
    /// longer counts as queued, and a [`Drain`] waiting for it wakes.
    pub(crate) fn written(&mut self) {
        let mut state = self.shared.state();
        let taken = state.queued - state.frames.len() as u64;
        if state.written == taken {
            return;
        }
        self.shared
            .gauge
            .fetch_sub(state.writing as u64, Ordering::Relaxed);
        state.writing = 0;
        state.written = taken;
        let wake = std::mem::take(&mut state.watched);
        drop(state);
        if wake {
            self.shared.drained.notify_waiters();
        }
    }
}

/// Takes the next frame, which is then being written.
fn pop(state: &mut State) -> Option<Bytes> {
    let frame = state.frames.pop_front();
    if let Some(frame) = &frame {
        state.bytes -= frame.len();
        state.writing = frame.len();
    }
    if state.frames.is_empty() && state.frames.capacity() > KEPT_CAPACITY {
        state.frames.shrink_to(KEPT_CAPACITY);
    }
    frame
}

impl Drop for Frames {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.reader_gone = true;
        // Frees what was queued for a peer that will never read it.
        let left = state.bytes + state.writing;
        self.shared.gauge.fetch_sub(left as u64, Ordering::Relaxed);
        state.frames = VecDeque::new();
        state.bytes = 0;
        state.writing = 0;
        drop(state);
        self.shared.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_arrive_in_order_and_the_queue_is_bounded() {
        let (tx, mut rx) = outbox(2, usize::MAX, Arc::default());
        tx.try_send(Bytes::from_static(b"a")).unwrap();
        tx.try_send(Bytes::from_static(b"b")).unwrap();
        assert_eq!(tx.try_send(Bytes::from_static(b"c")), Err(Refused::Full));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"a"[..]));
        tx.try_send(Bytes::from_static(b"c")).unwrap();
        assert_eq!(rx.try_recv().as_deref(), Some(&b"b"[..]));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"c"[..]));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn the_reader_ends_when_the_last_sender_goes_and_the_queue_is_empty() {
        let (tx, mut rx) = outbox(4, usize::MAX, Arc::default());
        let other = tx.clone();
        tx.try_send(Bytes::from_static(b"last")).unwrap();
        drop(tx);
        drop(other);
        assert_eq!(rx.recv().await.as_deref(), Some(&b"last"[..]));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_for_a_frame_from_another_task() {
        let (tx, mut rx) = outbox(4, usize::MAX, Arc::default());
        let reader = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        std::thread::spawn(move || tx.try_send(Bytes::from_static(b"x")).unwrap())
            .join()
            .unwrap();
        assert_eq!(reader.await.unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_too() {
        let (tx, mut rx) = outbox(100, 10, Arc::default());
        // One frame of any size gets into an empty queue.
        tx.try_send(Bytes::from(vec![0; 64])).unwrap();
        assert_eq!(tx.try_send(Bytes::from_static(b"x")), Err(Refused::Full));
        rx.recv().await.unwrap();
        tx.try_send(Bytes::from(vec![0; 6])).unwrap();
        tx.try_send(Bytes::from(vec![0; 4])).unwrap();
        assert_eq!(tx.try_send(Bytes::from_static(b"x")), Err(Refused::Full));
        rx.recv().await.unwrap();
        tx.try_send(Bytes::from_static(b"x")).unwrap();
    }

    #[test]
    fn sending_after_the_reader_has_gone_is_refused() {
        let (tx, rx) = outbox(4, usize::MAX, Arc::default());
        drop(rx);
        assert_eq!(tx.try_send(Bytes::from_static(b"x")), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_frame_counts_as_queued_until_it_is_written() {
        let gauge = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = outbox(4, usize::MAX, Arc::clone(&gauge));
        let drain = tx.drain();
        tx.try_send(Bytes::from(vec![0; 10])).unwrap();
        let second = tx.try_send(Bytes::from(vec![0; 5])).unwrap();
        assert_eq!(gauge.load(Ordering::Relaxed), 15);
        let waiting = tokio::spawn(async move { drain.written(second).await });
        rx.recv().await.unwrap();
        assert_eq!(
            gauge.load(Ordering::Relaxed),
            15,
            "the first is being written"
        );
        rx.written();
        assert_eq!(gauge.load(Ordering::Relaxed), 5);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        rx.recv().await.unwrap();
        rx.written();
        assert!(waiting.await.unwrap());
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_drain_gives_up_when_the_writer_goes() {
        let gauge = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = outbox(4, usize::MAX, Arc::clone(&gauge));
        let ticket = tx.try_send(Bytes::from(vec![0; 10])).unwrap();
        tx.try_send(Bytes::from(vec![0; 5])).unwrap();
        let drain = tx.drain();
        let waiting = tokio::spawn(async move { drain.written(ticket).await });
        rx.recv().await.unwrap();
        tokio::task::yield_now().await;
        drop(rx);
        assert!(!waiting.await.unwrap());
        assert_eq!(gauge.load(Ordering::Relaxed), 0);
    }
}
