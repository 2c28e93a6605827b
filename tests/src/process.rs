//! This test process, watched from inside: its resident memory and the
//! panics on any of its threads. A relay started by a test runs in the
//! same process, so both count the relay too; a test that measures them
//! wants a test binary to itself, or the relay in a process of its own
//! ([`crate::child_relay`], measured with [`peak_rss_kib_of`]).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> Result<u64> {
    status_kib("VmRSS")
}

/// The process's peak resident memory (`VmHWM`), in KiB: memory taken and
/// freed again still shows here.
pub fn peak_rss_kib() -> Result<u64> {
    status_kib("VmHWM")
}

/// The peak resident memory (`VmHWM`) of the process `pid`, in KiB.
pub fn peak_rss_kib_of(pid: u32) -> Result<u64> {
    status_kib_at(&format!("/proc/{pid}/status"), "VmHWM")
}

/// The `field` of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> Result<u64> {
    status_kib_at("/proc/self/status", field)
}

/// The `field` of the status file at `path`, in KiB.
fn status_kib_at(path: &str, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

/// From now on, counts every panic on every thread (and still prints it
/// as the default hook does).
pub fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

/// The panics counted since [`count_panics`].
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}
