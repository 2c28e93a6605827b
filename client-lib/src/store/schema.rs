//! Every table of the replica's redb file.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | bytes (`schema_version`, `workspace`, `last_relay/RELAY-ID`, …) |
//! | `snapshots` | document id | the document saved whole |
//! | `changes` | (document id, sequence) | change chunks stored since the snapshot |
//! | `sync_states` | (relay, document id) | the sync state kept across connections |
//! | `index` | document id | the document's index entry (derived: rebuildable) |
//! | `rejected` | sequence | a change the relay refused, as JSON |

use redb::TableDefinition;

pub(crate) const SCHEMA_VERSION: u32 = 1;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const SNAPSHOTS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("snapshots");
pub(crate) const CHANGES: TableDefinition<(&[u8; 16], u64), &[u8]> =
    TableDefinition::new("changes");
pub(crate) const SYNC_STATES: TableDefinition<(&str, &[u8; 16]), &[u8]> =
    TableDefinition::new("sync_states");
pub(crate) const INDEX: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("index");
pub(crate) const REJECTED: TableDefinition<u64, &[u8]> = TableDefinition::new("rejected");
