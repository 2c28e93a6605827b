//! A workspace's automation rules in a replica: added, listed oldest first,
//! kept across reopening, removed; the document is the workspace's.

use std::path::PathBuf;

use rapport_client::Repo;
use rapport_model::automation::{EXAMPLES, Rule};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Home(PathBuf);

impl Home {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "rapport-client-automations-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rules_are_added_listed_kept_and_removed() -> Result {
    let home = Home::new("crud");
    let (first, second) = {
        let repo = Repo::init(&home.0)?;
        assert!(
            repo.automations("ws-1")?.is_empty(),
            "none before the first"
        );
        let first = repo.add_automation("ws-1", &Rule::parse(EXAMPLES[0].1)?)?;
        let second = repo.add_automation("ws-1", &Rule::parse(EXAMPLES[2].1)?)?;
        assert!(repo.automations("ws-2")?.is_empty(), "per workspace");
        (first, second)
    };
    let repo = Repo::open(&home.0)?;
    let rules = repo.automations("ws-1")?;
    assert_eq!(
        rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [first.as_str(), second.as_str()]
    );
    assert_eq!(Rule::parse(&rules[0].text)?, Rule::parse(EXAMPLES[0].1)?);
    assert_eq!(rules[0].by, repo.public_key().to_string());
    assert_eq!(rules[0].status.runs, 0);
    let heads = repo.heads(Repo::automations_id("ws-1"))?;
    assert!(!heads.is_empty(), "they live in the workspace's document");

    assert!(repo.remove_automation("ws-1", &first)?);
    assert!(!repo.remove_automation("ws-1", &first)?, "already gone");
    assert!(!repo.remove_automation("ws-1", "nope")?);
    let left: Vec<String> = repo
        .automations("ws-1")?
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [second]);
    Ok(())
}
