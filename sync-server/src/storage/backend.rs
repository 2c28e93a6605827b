//! Where the database lives: a plain file, or a backend of the embedder's.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, DatabaseError, StorageBackend};

/// redb's page cache. Its default, 1 GiB, kept every page a large upload
/// touched resident; the system's page cache holds the file as well, so a
/// read past this cache costs a copy, not a disk access. The cache is all
/// the heap an idle relay holds (heaptrack, after the pre-grown document
/// left memory: 8.3 of 9.0 MiB live with 8 MiB here), and it stays full
/// for good. Measured by hand against 8 MiB: `rapport bench ingest` (128
/// peers) within the run-to-run spread at 3 MiB (18,275–18,890 against
/// 17,766–18,686 a second) and about 4 % slower at 1 MiB; the relay's
/// resident memory after the pre-grown document's upload and idle period
/// 25.3 against 33.9 MiB.
const CACHE_BYTES: usize = 3 << 20;

/// Opens the database file. The default keeps it in a plain file; an
/// embedder may put it on another [`redb::StorageBackend`], as the tests do
/// with one that fails on purpose.
#[derive(Clone)]
pub struct Backend(Arc<OpenFn>);

type OpenFn = dyn Fn(&Path) -> Result<Database, DatabaseError> + Send + Sync;

impl Backend {
    /// Opens (or creates) the database at `path`.
    pub(super) fn open(&self, path: &Path) -> Result<Database, DatabaseError> {
        (self.0)(path)
    }

    /// The database in a file on disk.
    pub fn file() -> Self {
        Self(Arc::new(|path: &Path| {
            Database::builder().set_cache_size(CACHE_BYTES).create(path)
        }))
    }

    /// The database on the backend `make` returns for the file's path.
    pub fn custom<B: StorageBackend>(
        make: impl Fn(&Path) -> std::io::Result<B> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(move |path: &Path| {
            let backend = make(path).map_err(|e| DatabaseError::Storage(e.into()))?;
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create_with_backend(backend)
        }))
    }
}

impl Default for Backend {
    fn default() -> Self {
        Self::file()
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backend")
    }
}
