//! A storage backend that fails on command: the relay's database on a
//! plain file, with a switch for a full disk, a count of writes to fail,
//! and a file whose presence holds every write back.

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rapport_server::storage::Backend;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The switches, shared by the test and every backend it made.
#[derive(Debug, Default)]
pub struct Faults {
    full: AtomicBool,
    fail_next_writes: AtomicU64,
    failed: AtomicU64,
    stall_file: OnceLock<PathBuf>,
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// While full, growing the file fails with "no space left on device",
    /// as on a real disk; writes inside the file's current length succeed.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// The next `n` writes (and syncs) fail with an I/O error.
    pub fn fail_next_writes(&self, n: u64) {
        self.fail_next_writes.store(n, Ordering::SeqCst);
    }

    /// While `path` exists, every write (and sync) waits: a commit stands
    /// still before any of its bytes reach the file, as if the disk had
    /// stopped. Another process (a test driving `relay-child`) holds and
    /// releases it by creating and removing the file.
    pub fn stall_while_exists(&self, path: PathBuf) {
        let _ = self.stall_file.set(path);
    }

    /// How many operations failed on purpose so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// A relay storage backend that obeys these switches.
    pub fn backend(self: &Arc<Self>) -> Backend {
        let faults = Arc::clone(self);
        Backend::custom(move |path: &Path| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            Ok(FaultyBackend {
                file: FileBackend::new(file).map_err(io::Error::other)?,
                faults: Arc::clone(&faults),
            })
        })
    }

    fn check_write(&self) -> io::Result<()> {
        if let Some(path) = self.stall_file.get() {
            while path.exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let take = self
            .fail_next_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if take.is_ok() {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other("injected write failure"));
        }
        Ok(())
    }

    fn check_growth(&self, current: u64, wanted: u64) -> io::Result<()> {
        if wanted > current && self.full.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }
}

/// A file backend that consults [`Faults`] before writing.
#[derive(Debug)]
struct FaultyBackend {
    file: FileBackend,
    faults: Arc<Faults>,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.check_write()?;
        self.faults.check_growth(self.file.len()?, len)?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.check_write()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.faults.check_write()?;
        self.faults
            .check_growth(self.file.len()?, offset + data.len() as u64)?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
