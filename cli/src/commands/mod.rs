//! One module per group of commands.

pub(crate) mod automation;
pub(crate) mod backup;
pub(crate) mod bench;
pub(crate) mod dashboard;
pub(crate) mod export;
pub(crate) mod form;
pub(crate) mod history;
pub(crate) mod identity;
pub(crate) mod inbox;
pub(crate) mod records;
pub(crate) mod share;
pub(crate) mod sync;
pub(crate) mod watch;
pub(crate) mod workspace;
