//! The relay's counters, served as Prometheus text on `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the sync latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) connections: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) documents_loaded: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) changes_stored: AtomicU64,
    pub(crate) refused_changes: AtomicU64,
    pub(crate) dropped_messages: AtomicU64,
    pub(crate) slow_peers_disconnected: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    /// API calls refused for a missing membership or role.
    pub(crate) access_refusals: AtomicU64,
    /// Members' refusals (API calls and changes) past their key's share of
    /// the audit log, counted instead of written.
    pub(crate) unaudited_refusals: AtomicU64,
    pub(crate) storage_errors: AtomicU64,
    /// Notification e-mails handed to the SMTP server, and those it refused
    /// or could not take.
    pub(crate) emails_sent: AtomicU64,
    pub(crate) email_failures: AtomicU64,
    /// Durable commits of stored changes: with many writers at once, fewer
    /// than the changes (group commit).
    pub(crate) storage_commits: std::sync::Arc<AtomicU64>,
    /// Documents saved whole and kept as their snapshot.
    pub(crate) snapshots_kept: std::sync::Arc<AtomicU64>,
    /// Bytes queued for connections and not yet written to their sockets
    /// (a gauge, kept by every connection's outbox).
    pub(crate) queued_bytes: std::sync::Arc<AtomicU64>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Relaxed);
    }

    /// Records how long one sync message took, from arrival until its
    /// answers and forwards were queued (storage included).
    pub(crate) fn observe_sync_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let gauges = [
            (
                "rapport_connections",
                "Open WebSocket connections.",
                &self.connections,
            ),
            (
                "rapport_documents_loaded",
                "Documents held in memory.",
                &self.documents_loaded,
            ),
            (
                "rapport_send_queue_bytes",
                "Bytes queued for connections and not yet written to their sockets.",
                &*self.queued_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            write_metric(&mut out, name, "gauge", help, value.load(Relaxed));
        }
        let counters = [
            (
                "rapport_connections_total",
                "Connections accepted.",
                &self.connections_total,
            ),
            (
                "rapport_messages_in_total",
                "Protocol messages received.",
                &self.messages_in,
            ),
            (
                "rapport_messages_out_total",
                "Protocol messages sent.",
                &self.messages_out,
            ),
            (
                "rapport_bytes_in_total",
                "Bytes of protocol messages received.",
                &self.bytes_in,
            ),
            (
                "rapport_bytes_out_total",
                "Bytes of protocol messages sent.",
                &self.bytes_out,
            ),
            (
                "rapport_changes_stored_total",
                "Changes stored durably.",
                &self.changes_stored,
            ),
            (
                "rapport_refused_changes_total",
                "Changes refused (identity, access or storage).",
                &self.refused_changes,
            ),
            (
                "rapport_dropped_messages_total",
                "Messages dropped (unknown type, stale).",
                &self.dropped_messages,
            ),
            (
                "rapport_slow_peers_disconnected_total",
                "Connections cut off because their send queue was full.",
                &self.slow_peers_disconnected,
            ),
            (
                "rapport_auth_failures_total",
                "Upgrades refused for a missing or bad token.",
                &self.auth_failures,
            ),
            (
                "rapport_access_refusals_total",
                "API calls refused for a missing membership or role (members' refusals are also audited, at most 10 a minute per key).",
                &self.access_refusals,
            ),
            (
                "rapport_unaudited_refusals_total",
                "Members' refused API calls and changes left out of the audit log: past 10 a minute per key.",
                &self.unaudited_refusals,
            ),
            (
                "rapport_storage_errors_total",
                "Failed storage writes.",
                &self.storage_errors,
            ),
            (
                "rapport_emails_sent_total",
                "Notification e-mails the SMTP server took.",
                &self.emails_sent,
            ),
            (
                "rapport_email_failures_total",
                "Notification e-mails that could not be sent (they stay in the inbox).",
                &self.email_failures,
            ),
            (
                "rapport_storage_commits_total",
                "Durable commits of received changes (several changes share one).",
                &*self.storage_commits,
            ),
            (
                "rapport_snapshots_kept_total",
                "Documents saved whole (for a peer that had none, or once idle) and stored as their snapshot.",
                &*self.snapshots_kept,
            ),
        ];
        for (name, help, value) in counters {
            write_metric(&mut out, name, "counter", help, value.load(Relaxed));
        }
        let name = "rapport_sync_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a sync message's arrival until its answers are queued."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        out
    }
}

/// One metric in the Prometheus text exposition: its help, its type
/// (`counter`, `gauge`) and its value.
pub(crate) fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}
