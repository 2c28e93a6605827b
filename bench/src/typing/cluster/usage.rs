//! What the relays and nats-server of `rapport bench cluster` use over
//! the typing window: CPU time from `/proc`, resident memory sampled
//! throughout, and a clustered relay's stream counters from `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::machine::{Watched, sample_peak};
use crate::process::Relay;

/// What one process used over the typing window.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Usage {
    pub(super) cpu_seconds: Option<f64>,
    pub(super) rss_end: Option<u64>,
    pub(super) rss_peak: Option<u64>,
    /// Stream messages the relay published and took from the others (a
    /// relay in a cluster, from its `/metrics`).
    pub(super) published: Option<f64>,
    pub(super) taken: Option<f64>,
    /// CPU seconds a second just before the window, while nobody typed.
    pub(super) rest_cpu: Option<f64>,
}

/// How long the CPU time at rest is measured for, before the window.
const REST: Duration = Duration::from_secs(3);

/// The window over the relays and nats-server: CPU time and stream
/// counters at its start, resident memory sampled throughout; and their
/// CPU time a second at rest, just before it.
pub(super) struct Window {
    watched: Vec<Watched>,
    nats: Option<Watched>,
    before: Vec<Usage>,
    nats_before: Option<f64>,
    nats_rest: Option<f64>,
    peaks: Vec<Arc<AtomicU64>>,
    samplers: Vec<tokio::task::JoinHandle<()>>,
}

/// What each relay, and nats-server if any, used over the window.
pub(super) struct Used {
    pub(super) relays: Vec<Usage>,
    pub(super) nats: Option<Usage>,
}

impl Window {
    /// Measures the CPU time at rest (for a few seconds), then opens the
    /// window.
    pub(super) async fn open(relays: &[Relay], nats: Option<Watched>) -> Self {
        let watched: Vec<Watched> = relays.iter().map(Relay::watched).collect();
        let cpu = |w: &Watched| w.sample().map(|s| s.cpu_seconds);
        let rested: Vec<Option<f64>> = watched.iter().map(cpu).collect();
        let nats_rested = nats.as_ref().and_then(cpu);
        tokio::time::sleep(REST).await;
        let nats_before = nats.as_ref().and_then(cpu);
        let mut window = Self {
            watched,
            nats,
            before: Vec::new(),
            nats_before,
            nats_rest: per_second(nats_before, nats_rested),
            peaks: Vec::new(),
            samplers: Vec::new(),
        };
        for ((relay, watched), rested) in relays.iter().zip(window.watched.clone()).zip(rested) {
            let mut before = usage_now(relay, watched).await;
            before.rest_cpu = per_second(before.cpu_seconds, rested);
            window.before.push(before);
            let peak = Arc::new(AtomicU64::new(0));
            window.samplers.push(tokio::spawn(sample_peak(
                Some(watched),
                Arc::clone(&peak),
                Duration::from_millis(250),
            )));
            window.peaks.push(peak);
        }
        window
    }

    /// What each relay and nats-server used since the window opened.
    pub(super) async fn close(self, relays: &[Relay]) -> Used {
        let minus = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
        let mut used = Vec::new();
        for (n, relay) in relays.iter().enumerate() {
            let after = usage_now(relay, self.watched[n]).await;
            let before = self.before[n];
            used.push(Usage {
                cpu_seconds: minus(after.cpu_seconds, before.cpu_seconds),
                rss_end: after.rss_end,
                rss_peak: after
                    .rss_end
                    .map(|end| end.max(self.peaks[n].load(Ordering::Relaxed))),
                published: minus(after.published, before.published),
                taken: minus(after.taken, before.taken),
                rest_cpu: before.rest_cpu,
            });
        }
        for sampler in &self.samplers {
            sampler.abort();
        }
        let nats = self.nats.map(|watched| {
            let after = watched.sample();
            Usage {
                cpu_seconds: minus(after.map(|a| a.cpu_seconds), self.nats_before),
                rss_end: after.map(|a| a.rss_bytes),
                // nats-server is not sampled during the window: its
                // largest resident memory since it started.
                rss_peak: after.map(|a| a.peak_rss_bytes),
                rest_cpu: self.nats_rest,
                ..Usage::default()
            }
        });
        Used { relays: used, nats }
    }
}

/// A relay's CPU time, memory and stream counters now.
async fn usage_now(relay: &Relay, watched: Watched) -> Usage {
    let sample = watched.sample();
    Usage {
        cpu_seconds: sample.map(|s| s.cpu_seconds),
        rss_end: sample.map(|s| s.rss_bytes),
        rss_peak: None,
        rest_cpu: None,
        published: relay.metric("rapport_cluster_published_total").await,
        taken: relay.metric("rapport_cluster_taken_total").await,
    }
}

/// CPU seconds a second over [`REST`], from two readings.
fn per_second(after: Option<f64>, before: Option<f64>) -> Option<f64> {
    after.zip(before).map(|(a, b)| (a - b) / REST.as_secs_f64())
}
