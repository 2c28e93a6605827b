//! A connection's queue of frames waiting to be written: bounded, filled by
//! any task, drained by the connection's writer.
//!
//! Written here rather than taken from `tokio::sync::mpsc`, whose bounded
//! channel allocates its first block of 32 slots (about 1.5 KiB with its
//! state) when it is made. Most of a relay's connections are idle, and an
//! empty outbox here costs one small allocation.

use std::collections::VecDeque;
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

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken when a frame is queued or the last sender leaves.
    ready: Notify,
    limit: usize,
    byte_limit: usize,
}

#[derive(Debug)]
struct State {
    frames: VecDeque<Bytes>,
    /// The bytes of `frames`.
    bytes: usize,
    senders: usize,
    reader_gone: bool,
}

/// Capacity kept by an outbox drained after a burst.
const KEPT_CAPACITY: usize = 16;

/// A queue of at most `limit` frames (at least one) and `byte_limit`
/// bytes (one frame of any size is always let into an empty queue).
pub(crate) fn outbox(limit: usize, byte_limit: usize) -> (Outbox, Frames) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            bytes: 0,
            senders: 1,
            reader_gone: false,
        }),
        ready: Notify::new(),
        limit: limit.max(1),
        byte_limit,
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
    /// Queues a frame without waiting.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), Refused> {
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
        state.frames.push_back(frame);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
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
    /// empty.
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
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

    /// The next frame if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        pop(&mut self.shared.state())
    }
}

fn pop(state: &mut State) -> Option<Bytes> {
    let frame = state.frames.pop_front();
    if let Some(frame) = &frame {
        state.bytes -= frame.len();
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
        state.frames = VecDeque::new();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_arrive_in_order_and_the_queue_is_bounded() {
        let (tx, mut rx) = outbox(2, usize::MAX);
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
        let (tx, mut rx) = outbox(4, usize::MAX);
        let other = tx.clone();
        tx.try_send(Bytes::from_static(b"last")).unwrap();
        drop(tx);
        drop(other);
        assert_eq!(rx.recv().await.as_deref(), Some(&b"last"[..]));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_for_a_frame_from_another_task() {
        let (tx, mut rx) = outbox(4, usize::MAX);
        let reader = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        std::thread::spawn(move || tx.try_send(Bytes::from_static(b"x")).unwrap())
            .join()
            .unwrap();
        assert_eq!(reader.await.unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_too() {
        let (tx, mut rx) = outbox(100, 10);
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
        let (tx, rx) = outbox(4, usize::MAX);
        drop(rx);
        assert_eq!(tx.try_send(Bytes::from_static(b"x")), Err(Refused::Closed));
    }
}
