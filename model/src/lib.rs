//! rapport's CRM model, written once for every side: the replica, the relay
//! and (through generated TypeScript) the web app.
//!
//! Like `rapport-protocol`, this crate is sans-IO: no runtime, socket,
//! database, clock or randomness (a test fails if an IO crate enters its
//! dependency tree). Callers pass the time in.
//!
//! - [`record`]: the typed documents, customer, task, requirements and
//!   comment thread, each read from and written into an automerge document
//!   ([`Task::read`], [`Task::write`], [`Task::update`]).
//! - [`date`]: calendar dates and UTC conversions.
//! - [`automation`]: the rule grammar and the automations document.
//! - [`form`]: intake forms, their submissions and the task one becomes.
//! - [`access`] and [`workspace`]: roles, levels, the workspace data and the
//!   one rule deciding what a person may do with a document.
//! - [`api`]: the relay's HTTP API, request and answer types.
//!
//! ```
//! use automerge::AutoCommit;
//! use rapport_model::{Priority, Task};
//!
//! let mut doc = AutoCommit::new();
//! let mut task = Task::new("Send the offer");
//! task.priority = Priority::High;
//! task.write(&mut doc)?;
//! assert_eq!(Task::read(&doc)?.priority, Priority::High);
//! # Ok::<(), rapport_model::ModelError>(())
//! ```

pub mod access;
pub mod api;
pub mod automation;
pub mod date;
pub mod export;
pub mod form;
pub mod record;
pub mod workspace;

#[cfg(test)]
mod typescript;

pub use access::{Access, Level, Role};
pub use date::{Date, DateError};
pub use record::*;
