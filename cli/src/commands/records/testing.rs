//! A throwaway home for the unit tests: an initialised replica in a temporary
//! folder, removed when the test ends.

use std::path::PathBuf;

use rapport_client::Repo;

use crate::context::{Context, Settings};

#[derive(Debug)]
pub(super) struct Home {
    pub(super) path: PathBuf,
}

impl Home {
    /// A fresh home named after the test, initialised as `rapport init`
    /// leaves it (identity plus settings).
    pub(super) fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("rapport-records-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Repo::init(&path).expect("a new temporary home initialises");
        let home = Self { path };
        let settings = Settings {
            name: "Tester".into(),
            ..Settings::default()
        };
        home.context()
            .save_settings(&settings)
            .expect("the settings file is writable");
        home
    }

    /// A `--json` context on this home.
    pub(super) fn context(&self) -> Context {
        Context {
            home: self.path.clone(),
            json: true,
        }
    }

    /// The replica, opened; drop it before running a command.
    pub(super) fn repo(&self) -> Repo {
        Repo::open(&self.path).expect("the home was initialised")
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
