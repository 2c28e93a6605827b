//! A client on a comment thread adds comments and changes only their own:
//! not another person's comment, not the thread itself, not an author's
//! name; a thread cannot be turned into a record.

use anyhow::{Result, ensure};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ROOT};
use ed25519_dalek::SigningKey;
use rapport_client::api::Level;
use rapport_model::{Comment, Customer, Relationship, Thread};
use rapport_protocol::ids::DocumentId;
use rapport_protocol::wire::RejectReason;
use rapport_tests::peer::{TestPeer, actor_of, key, public};
use rapport_tests::relay::{TempDir, TestRelay, client_invite};

use super::{blocking, person, refusal, stored};

/// `base` forked for `key`'s device 1, with one change made by `edit`.
fn edited(
    base: &Automerge,
    key: &SigningKey,
    edit: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<()>,
) -> Result<Automerge> {
    let mut doc = base.fork().with_actor(actor_of(key, 1));
    let mut tx = doc.transaction();
    edit(&mut tx)?;
    tx.commit();
    Ok(doc)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_changes_only_its_own_comments_and_never_the_thread() -> Result<()> {
    let dir = TempDir::new("attack-threads");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let (owner, client) = (key(1), key(2));
    let owner_api = person(&relay, &owner, &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;

    // The owner's record, and its thread with the owner's question.
    let (record, thread) = (
        DocumentId::from_bytes([31; 16]),
        DocumentId::from_bytes([32; 16]),
    );
    let mut customer = Automerge::new().with_actor(actor_of(&owner, 1));
    customer
        .transact(|tx| Customer::new("Globex", Relationship::Client).write(tx))
        .map_err(|failure| failure.error)?;
    let mut base = Automerge::new().with_actor(actor_of(&owner, 1));
    base.transact(|tx| {
        let mut t = Thread::new(&record);
        t.add(Comment::new("q", &public(&owner), 1, "Which colour?"));
        t.write(tx)
    })
    .map_err(|failure| failure.error)?;
    blocking(|| owner_api.add_documents(&ws, &[(record, None), (thread, Some(record))]))?;
    let owner_peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &owner, "owner").await?;
    owner_peer.open(record, customer);
    owner_peer.open(thread, base.clone());
    stored(&relay, 2).await?;

    let link = blocking(|| owner_api.create_invite(&ws, &client_invite(record, Level::Write)))?;
    let client_api = person(&relay, &client, &mut dirs)?;
    blocking(|| client_api.redeem(&link))?;

    // Each attack: refused as more than a client may do, and not stored.
    let attacks: Vec<(&str, Automerge)> = vec![
        (
            "resolves the owner's comment",
            edited(&base, &client, |tx| {
                Thread::update(tx, |t| t.set_resolved("q", true))?;
                Ok(())
            })?,
        ),
        (
            "rewrites the owner's comment",
            edited(&base, &client, |tx| {
                Thread::update(tx, |t| t.comments[0].body = "Never mind".into())?;
                Ok(())
            })?,
        ),
        (
            "deletes the owner's comment",
            edited(&base, &client, |tx| {
                Thread::update(tx, |t| t.comments.clear())?;
                Ok(())
            })?,
        ),
        (
            "writes a comment in the owner's name",
            edited(&base, &client, |tx| {
                Thread::update(tx, |t| {
                    t.add(Comment::new("f", &public(&owner), 2, "Approved."))
                })?;
                Ok(())
            })?,
        ),
        (
            "turns the thread into a customer",
            edited(&base, &client, |tx| {
                tx.put(ROOT, "kind", "customer")?;
                tx.put(ROOT, "name", "Planted")?;
                Ok(())
            })?,
        ),
        (
            "moves the thread to another record",
            edited(&base, &client, |tx| {
                tx.put(ROOT, "record", DocumentId::from_bytes([9; 16]).to_string())?;
                Ok(())
            })?,
        ),
    ];
    for (n, (what, doc)) in attacks.into_iter().enumerate() {
        let peer =
            TestPeer::connect_as(&relay.url(), &relay.relay_id, &client, &format!("c{n}")).await?;
        peer.open(thread, doc);
        peer.wait_until(|s| !s.rejected.is_empty()).await?;
        let reason = peer.with(|s| s.rejected[0].reason.clone());
        ensure!(
            reason == RejectReason::CommentsOnly,
            "a client who {what} was refused as {reason:?}"
        );
        peer.close().await;
    }
    ensure!(
        relay.metric("rapport_changes_stored_total").await? == 2,
        "an attack on the thread was stored"
    );

    // Nobody writes a comment with an actor that names no key, staff
    // included: its author would be whatever its field says.
    for (n, (who, writer)) in [("a client", &client), ("staff", &owner)]
        .into_iter()
        .enumerate()
    {
        let mut forged = base.fork().with_actor(ActorId::random());
        forged
            .transact(|tx| {
                Thread::update(tx, |t| {
                    t.add(Comment::new("r", &public(&key(9)), 2, "Approved."))
                })
            })
            .map_err(|failure| failure.error)?;
        let name = format!("anonymous-{n}");
        let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, writer, &name).await?;
        peer.open(thread, forged);
        peer.wait_until(|s| !s.rejected.is_empty()).await?;
        let reason = peer.with(|s| s.rejected[0].reason.clone());
        ensure!(
            reason == RejectReason::CommentsOnly,
            "{who} writing with a random actor was refused as {reason:?}"
        );
        peer.close().await;
    }
    ensure!(
        relay.metric("rapport_changes_stored_total").await? == 2,
        "a comment by a random actor was stored"
    );

    // What a client may do: add comments, change the text of its own,
    // resolve its own.
    let mine = edited(&base, &client, |tx| {
        Thread::update(tx, |t| {
            t.add(Comment::new("a", &public(&client), 2, "Blue, please."));
            t.add(Comment::new("b", &public(&client), 3, "And a size?"));
        })?;
        Ok(())
    })?;
    let changed = edited(&mine, &client, |tx| {
        Thread::update(tx, |t| {
            t.set_resolved("b", true);
            if let Some(a) = t.comments.iter_mut().find(|c| c.id == "a") {
                a.body = "Navy, please.".into();
            }
        })?;
        Ok(())
    })?;
    let peer = TestPeer::connect_as(&relay.url(), &relay.relay_id, &client, "client").await?;
    peer.open(thread, changed.clone());
    stored(&relay, 4).await?;
    // Staff resolve anyone's: the client's comment too.
    owner_peer.open(
        thread,
        edited(&changed, &owner, |tx| {
            Thread::update(tx, |t| t.set_resolved("a", true))?;
            Ok(())
        })?,
    );
    stored(&relay, 5).await?;
    let client_key = public(&client).to_string();
    peer.wait_until(|s| {
        Thread::read(s.doc(thread)).is_ok_and(|t| {
            t.comment("a")
                .is_some_and(|a| a.resolved && a.body == "Navy, please." && a.author == client_key)
                && t.comment("b").is_some_and(|b| b.resolved)
        })
    })
    .await?;
    ensure!(
        peer.with(|s| s.rejected.is_empty()),
        "a client's own comment was refused"
    );

    // A document that is not a thread of the record is not listed as one.
    let planted = DocumentId::from_bytes([33; 16]);
    let mut fake = Automerge::new().with_actor(actor_of(&client, 2));
    fake.transact(|tx| Customer::new("Planted", Relationship::Client).write(tx))
        .map_err(|failure| failure.error)?;
    peer.open(planted, fake);
    stored(&relay, 6).await?;
    let (status, message) = refusal(blocking(|| {
        client_api.add_documents(&ws, &[(planted, Some(record))])
    }))?;
    ensure!(
        status == 403 && message.contains("not a comment thread"),
        "listing a customer as a thread: {status} {message}"
    );
    Ok(())
}

#[test]
fn a_comment_shows_the_key_that_wrote_it_whatever_its_author_field_says() -> Result<()> {
    let (staff, client) = (key(1), key(2));
    let mut doc = Automerge::new().with_actor(actor_of(&staff, 1));
    doc.transact(|tx| {
        let mut t = Thread::new(&DocumentId::from_bytes([1; 16]));
        t.add(Comment::new(
            "x",
            &public(&client),
            1,
            "in the client's name",
        ));
        t.write(tx)
    })
    .map_err(|failure| failure.error)?;
    let thread = Thread::read(&doc)?;
    ensure!(
        thread.comments[0].author == public(&staff).to_string(),
        "the comment shows {} as its author",
        thread.comments[0].author
    );
    Ok(())
}
