//! One relay at several addresses. The relays of a cluster answer to one
//! relay id (the token audience), so a replica may sync through any of
//! them, with the same sync states. A sync tries the addresses in turn,
//! from the one a connection was last made with (kept in the replica's
//! `meta` table, by relay id), and moves on after a failed connection or a
//! `storage-unavailable`; if every one fails, the error names each.
//!
//! Relays without tokens have no relay id to keep the address under: their
//! addresses are tried from the first each time.

use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::error::ClientError;
use crate::relay_url::{RelayList, RelayUrl};
use crate::repo::Repo;
use crate::sync::{LiveSync, Mode, Plan, Progress, RelayConfig, SyncError};

/// The `meta` key prefix of the address last connected to, by relay id.
const LAST_RELAY: &str = "last_relay/";

/// A relay reached at any of several addresses, and how to authenticate
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relays {
    pub urls: RelayList,
    /// The relay id every address answers to; `None` for relays without
    /// tokens.
    pub audience: Option<String>,
}

/// A sync that finished: through which address, and how far it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub relay: RelayUrl,
    pub progress: Progress,
}

impl Relays {
    /// Where and as whom to reach the relay at `url`.
    pub fn config(&self, url: &RelayUrl) -> RelayConfig {
        RelayConfig {
            url: url.sync_url(),
            audience: self.audience.clone(),
        }
    }
}

impl SyncError {
    /// Whether another address of the relay may do better: this one could
    /// not be reached, refused, broke off or could not store. A timeout
    /// (the patience is spent) and a failure of the replica are not.
    pub fn is_of_the_address(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Refused { .. }
                | Self::Protocol { .. }
                | Self::Closed { .. }
                | Self::StorageUnavailable { .. }
        )
    }
}

impl Repo {
    /// The address of `relays` a connection was last made with, if it is
    /// still one of them.
    pub fn last_relay(&self, relays: &Relays) -> Result<Option<RelayUrl>, ClientError> {
        let Some(audience) = &relays.audience else {
            return Ok(None);
        };
        let stored = self.store().meta(&format!("{LAST_RELAY}{audience}"))?;
        Ok(stored
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<RelayUrl>().ok())
            .filter(|url| relays.urls.contains(url)))
    }

    /// Keeps `relay` as the address a connection was last made with.
    /// Blocking (a write when it changed).
    pub(crate) fn remember_relay(&self, relay: &RelayConfig) -> Result<(), ClientError> {
        let Some(audience) = &relay.audience else {
            return Ok(());
        };
        let key = format!("{LAST_RELAY}{audience}");
        if self.store().meta(&key)?.as_deref() != Some(relay.url.as_bytes()) {
            self.store().set_meta(&key, relay.url.as_bytes())?;
        }
        Ok(())
    }

    /// [`Repo::sync_once`] through the first address of `relays` that
    /// works, in turn from the last one that did. `patience` bounds the
    /// whole; `report` sees each step of each attempt
    /// ([`Progress::relay`] says which address).
    pub async fn sync_once_through(
        &self,
        relays: &Relays,
        patience: Duration,
        mut report: impl FnMut(&Progress),
    ) -> Result<Synced, SyncError> {
        let deadline = Instant::now() + patience;
        let turn = self.turn(relays)?;
        let mut failures = Vec::new();
        for url in turn {
            let relay = relays.config(&url);
            let plan = Plan {
                relay: &relay,
                mode: Mode::Once,
                leave_unstored: relays.urls.len() > 1,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.sync_once_as(plan, left, &mut report).await {
                Ok(progress) => {
                    return Ok(Synced {
                        relay: url,
                        progress,
                    });
                }
                Err(e) if e.is_of_the_address() => {
                    warn!(relay = %url, error = %e, "trying the next address of the relay");
                    failures.push(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(match failures.len() {
            1 => failures.remove(0),
            _ => SyncError::EveryAddressFailed { failures },
        })
    }

    /// [`Repo::sync_live`] through the addresses of `relays`, in turn from
    /// the last that worked: after a failed connection the next is tried
    /// at once; the backoff applies once every one has failed in a row.
    /// Needs a tokio runtime.
    pub fn sync_live_through(&self, relays: &Relays) -> Result<LiveSync, ClientError> {
        let configs = self
            .turn(relays)?
            .iter()
            .map(|url| relays.config(url))
            .collect();
        Ok(self.sync_live_in_turn(configs))
    }

    /// The addresses in the order to try them (a short read of the
    /// replica).
    fn turn(&self, relays: &Relays) -> Result<Vec<RelayUrl>, ClientError> {
        let last = self.last_relay(relays)?;
        Ok(relays.urls.in_turn_from(last.as_ref()))
    }
}
