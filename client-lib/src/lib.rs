//! rapport's replica: every document a person may see, stored in redb and synced through a relay. Being built; nothing here yet.
