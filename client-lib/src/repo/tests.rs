use super::*;
use rapport_protocol::wire::{RejectReason, Rejected};

fn home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rapport-repo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn refused_changes_are_kept_and_survive_reopening() {
    let dir = home("refused");
    let repo = Repo::init(&dir).unwrap();
    let document = DocumentId::from_bytes([3; 16]);
    let notice = Message::Rejected(Rejected {
        sender_id: "relay".parse().unwrap(),
        target_id: repo.peer_id().clone(),
        document_id: document,
        changes: vec![rapport_protocol::ids::ChangeHash::from_bytes([1; 32])],
        reason: RejectReason::ReadOnly,
        message: "you may read this document but not change it".into(),
    });
    assert_eq!(repo.receive(notice).unwrap(), Received::Nothing);
    drop(repo);
    let repo = Repo::open(&dir).unwrap();
    let refused = repo.refused_changes().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].document, document.to_string());
    assert_eq!(refused[0].reason, "read-only");
    assert_eq!(refused[0].changes, vec!["01".repeat(32)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_actor_is_the_key_then_the_device_and_stable() {
    let dir = home("actor");
    let repo = Repo::init(&dir).unwrap();
    let actor = repo.identity().actor_id();
    assert_eq!(&actor.to_bytes()[..32], repo.public_key().as_bytes());
    drop(repo);
    let again = Repo::open(&dir).unwrap();
    assert_eq!(again.identity().actor_id(), actor);
    let (id, ()) = again
        .create(|tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "x", 1).map(|_| ())
        })
        .unwrap();
    let change_actor = again
        .read(id, |d| d.get_changes(&[])[0].actor_id().clone())
        .unwrap();
    assert_eq!(change_actor, actor);
    let _ = std::fs::remove_dir_all(&dir);
}
