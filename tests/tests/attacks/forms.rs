//! A flood of form submissions does not make each one cost more: a
//! submission writes one listing row, not the whole workspace again, and
//! finds its customer from the documents that changed since the last one.

use anyhow::{Context, Result, ensure};
use rapport_model::Customer;
use rapport_protocol::ids::DocumentId;
use rapport_server::storage::Store;
use rapport_tests::forms::{PATIENCE, World, generous, good_submission, support_form};

/// The size of the workspace's own row, and how many documents it lists,
/// read from the relay's file (the relay must be stopped).
fn stored_rows(world: &World) -> Result<(usize, usize)> {
    let store = Store::open(world.relay.data_dir())?;
    let rows = store.workspaces()?;
    ensure!(rows.len() == 1, "one workspace, not {}", rows.len());
    let listed = store
        .workspace_documents()?
        .iter()
        .filter(|(ws, _, _)| *ws == world.workspace)
        .count();
    Ok((rows[0].len(), listed))
}

async fn submit(world: &World, form: &str, email: &str) -> Result<DocumentId> {
    let mut body = good_submission();
    body["email"] = email.into();
    let answer = world.post_json(form, &body).await?;
    ensure!(answer.status == 201, "{} {}", answer.status, answer.body);
    Ok(answer.json()["task"]
        .as_str()
        .context("the task's id")?
        .parse()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_submissions_writes_one_row_each_and_still_finds_the_customer() -> Result<()> {
    let mut world = World::new("flood", generous()).await?;
    let form = world.create_form(&support_form())?;
    submit(&world, &form.id, "buyer@acme.test").await?;
    world.relay.stop().await?;
    let (row, listed) = stored_rows(&world)?;
    world.relay.restart_in_place().await?;

    const FLOOD: usize = 40;
    for _ in 0..FLOOD {
        submit(&world, &form.id, "nobody@elsewhere.test").await?;
    }
    // The customer's email changes on a staff replica; the next submission
    // finds it under the new one, from what changed since the flood.
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    world.owner.change(world.acme, |tx| {
        Customer::update(tx, |c| c.email = "new@acme.test".into())
    })?;
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let last = submit(&world, &form.id, "NEW@acme.test").await?;

    world.relay.stop().await?;
    let (row_after, listed_after) = stored_rows(&world)?;
    ensure!(
        row_after == row,
        "the workspace's row grew from {row} to {row_after} bytes over {FLOOD} submissions"
    );
    ensure!(
        listed_after == listed + FLOOD + 1,
        "{listed_after} listings after {} more submissions, from {listed}",
        FLOOD + 1
    );
    // Every listing survives a restart, read back from its own row.
    world.relay.restart_in_place().await?;
    ensure!(world.documents()?.len() >= listed_after, "listings lost");
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    let linked = World::tasks(&world.owner)?
        .into_iter()
        .find(|(id, _)| *id == last)
        .context("the last task on the owner's replica")?
        .1
        .customer;
    ensure!(
        linked.as_deref() == Some(world.acme.to_string().as_str()),
        "the last submission was linked to {linked:?}, not the customer under its new email"
    );
    Ok(())
}
