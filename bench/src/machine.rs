//! The machine a benchmark ran on, and the server process it measured,
//! read from `/proc` (Linux; elsewhere the fields stay empty).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The machine: cores, memory, CPU model, load when the run started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) cpu_model: Option<String>,
    /// The 1-minute load average when this was read.
    pub(crate) load_average: Option<f64>,
    pub(crate) os: String,
    pub(crate) arch: String,
}

impl Machine {
    pub(crate) fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_bytes: kib_field(&meminfo, "MemTotal").map(|k| k * 1024),
            cpu_model: cpu_model(&cpuinfo),
            load_average: loadavg
                .split_whitespace()
                .next()
                .and_then(|l| l.parse().ok()),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }

    /// One line for people: `2 cores, 23.5 GiB, AMD EPYC (load 0.17)`.
    pub(crate) fn describe(&self) -> String {
        let memory = self
            .memory_bytes
            .map_or_else(|| "memory unknown".to_owned(), super::stats::bytes);
        let load = self
            .load_average
            .map(|l| format!(", load average {l:.2} at start"))
            .unwrap_or_default();
        format!(
            "{} cores, {memory}, {}, {} {}{load}",
            self.cores,
            self.cpu_model.as_deref().unwrap_or("CPU model unknown"),
            self.os,
            self.arch
        )
    }
}

/// The `model name` of the first processor in `/proc/cpuinfo`.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Name:   1234 kB` field of `/proc/meminfo` or `/proc/PID/status`, in KiB.
pub(crate) fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What `/proc` says about a process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct ProcessSample {
    /// User plus system CPU time so far.
    pub(crate) cpu_seconds: f64,
    /// Resident memory now.
    pub(crate) rss_bytes: u64,
    /// The largest resident memory so far (VmHWM).
    pub(crate) peak_rss_bytes: u64,
}

/// A process the benchmark watches (the server under test).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watched {
    pid: u32,
    ticks_per_second: f64,
}

impl Watched {
    pub(crate) fn new(pid: u32) -> Self {
        Self {
            pid,
            ticks_per_second: clock_ticks_per_second(),
        }
    }

    /// Reads the process now; `None` if it is gone or `/proc` is missing.
    pub(crate) fn sample(&self) -> Option<ProcessSample> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let ticks = cpu_ticks(&stat)?;
        Some(ProcessSample {
            cpu_seconds: ticks as f64 / self.ticks_per_second,
            rss_bytes: kib_field(&status, "VmRSS")? * 1024,
            peak_rss_bytes: kib_field(&status, "VmHWM")? * 1024,
        })
    }
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`.
pub(crate) fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: count fields after the last `)`.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `sysconf(_SC_CLK_TCK)` without unsafe code: the `AT_CLKTCK` entry of the
/// auxiliary vector. Linux has used 100 on every common platform for
/// decades, the fallback.
fn clock_ticks_per_second() -> f64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100.0;
    };
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
            (word(&pair[..8]), word(&pair[8..]))
        })
        .find(|(key, _)| *key == AT_CLKTCK)
        .map_or(100.0, |(_, value)| value as f64)
}

/// Samples the watched process every `every` until aborted, keeping its
/// largest resident memory in `peak`.
pub(crate) async fn sample_peak(
    watched: Option<Watched>,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    every: Duration,
) {
    let Some(watched) = watched else { return };
    loop {
        if let Some(s) = watched.sample() {
            peak.fetch_max(s.rss_bytes, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read() {
        let stat = "4242 (rapport (srv) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 37 0 0 20 0 9 0 12345 987654 321 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(287));
        let status = "Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(102_400));
        assert_eq!(kib_field(status, "VmHWM"), Some(204_800));
        assert_eq!(kib_field(status, "VmSwap"), None);
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_can_be_watched() {
        let me = Watched::new(std::process::id());
        if let Some(sample) = me.sample() {
            assert!(sample.rss_bytes > 0);
            assert!(sample.peak_rss_bytes >= sample.rss_bytes);
        }
        assert!(me.ticks_per_second > 0.0);
    }
}
