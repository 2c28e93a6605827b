//! rapport's relay: a self-hosted WebSocket sync server on redb. Being built; nothing here yet.
