//! What every HTTP handler shares: the relay, the forms, the shutdown
//! signal and the count of live connections. This module depends on no
//! handler; the handlers depend on it.

use std::sync::Arc;

use tokio::sync::watch;

use crate::forms::Forms;
use crate::relay::Relay;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) relay: Arc<Relay>,
    pub(crate) forms: Arc<Forms>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) tracker: ConnTracker,
    /// The last storage check of `/healthz`.
    pub(crate) storage_checked: Arc<std::sync::Mutex<Option<StorageCheck>>>,
}

/// When storage was last checked, and what the check found.
pub(crate) type StorageCheck = (std::time::Instant, Result<(), String>);

/// Counts live connection tasks so that shutdown can wait for them.
#[derive(Clone, Debug)]
pub(crate) struct ConnTracker(Arc<tokio::sync::Semaphore>);

impl ConnTracker {
    const MAX: u32 = 1 << 24;

    pub(crate) fn new() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(Self::MAX as usize)))
    }

    pub(crate) fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }

    /// Waits until every connection task has ended.
    pub(crate) async fn wait_idle(&self) {
        let _ = self.0.acquire_many(Self::MAX).await;
    }
}
