//! Editing in the web app, in headless Chromium against a relay in this
//! process: a client, staff in a browser and staff's Rust replica write
//! the same document at once and converge; a client works offline across a
//! reload; a comment-only client cannot change the document, and a change
//! forced through the page is refused. Who sees what is in `web.rs`.

use std::time::Duration;

use anyhow::{Context as _, Result};
use rapport_client::api::Level;
use rapport_model::Requirements;
use rapport_tests::browser::world::{TITLE, WAIT, WELCOME, World};
use rapport_tests::browser::{At, Format, Until, Viewport, shared};
use serde_json::json;

/// What each person writes, each in its own section.
const CLIENT_LINE: &str = "Buyers track their orders online.";
const STAFF_LINE: &str = "Invoices go out monthly.";
const REPLICA_STEPS: [&str; 3] = [
    "Payment",
    "Payment within thirty",
    "Payment within thirty days.",
];
/// How long apart a person's key presses are, so the typing overlaps.
const KEY_DELAY: Duration = Duration::from_millis(15);

#[test]
fn a_client_staff_in_a_browser_and_the_staff_replica_edit_at_once_and_converge() -> Result<()> {
    let world = World::new("web-together")?;
    let _live = world.live();
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Write)?;
    world.staff_opens(&mut browser, "staff", Viewport::LAPTOP)?;
    let client = browser.state("client")?;
    assert_eq!(client.read_only, Some(false), "{:?}", client.raw);
    assert_eq!(client.read_only_reason, None);

    // The client types under "Scope" while Sam types at the end in his
    // browser and writes under "Financial details" from his replica.
    let scope = world.index_under("Scope")?;
    let client_typing = browser.start_typing("client", CLIENT_LINE, At::Index(scope), KEY_DELAY)?;
    let staff_typing = browser.start_typing("staff", STAFF_LINE, At::End, KEY_DELAY)?;
    let mut line = String::new();
    for step in REPLICA_STEPS {
        world.staff.change(world.requirements, |tx| {
            let body = Requirements::body_markdown(tx)?;
            let body = if line.is_empty() {
                body.replacen(
                    "## Financial details\n",
                    &format!("## Financial details\n{step}\n"),
                    1,
                )
            } else {
                body.replacen(&line, step, 1)
            };
            Requirements::set_body_markdown(tx, &body)
        })?;
        line = step.to_owned();
    }
    browser.finish(client_typing)?;
    browser.finish(staff_typing)?;

    // Everyone has every line.
    let replica_line = REPLICA_STEPS[REPLICA_STEPS.len() - 1];
    for page in ["client", "staff"] {
        for text in [CLIENT_LINE, STAFF_LINE, replica_line] {
            browser.wait_for(page, Until::EditorText(text), WAIT)?;
        }
    }
    world.wait_for_staff("every line", WAIT, |_| {
        let body = world.body_markdown()?;
        Ok([CLIENT_LINE, STAFF_LINE, replica_line]
            .iter()
            .all(|l| body.contains(l)))
    })?;

    // Sam makes a word bold in his browser; it reaches the replica.
    let from = world.index_of("monthly")?;
    assert!(browser.format("staff", Format::Bold, Some((from, from + "monthly".len())))?);
    world.wait_for_staff("the bold word", WAIT, |_| {
        Ok(world
            .runs()?
            .iter()
            .any(|r| r.text == "monthly" && r.marks.get("strong") == Some(&json!(true))))
    })?;

    // All three hold the same text and marks.
    let expected = world.expected_editor()?;
    let markdown = world.body_markdown()?;
    for page in ["client", "staff"] {
        browser.wait_for(page, Until::EditorIs(&expected), WAIT)?;
        assert_eq!(browser.editor(page)?.body, expected, "{page}");
    }
    assert!(
        markdown.contains("Invoices go out **monthly**."),
        "{markdown}"
    );
    let lines: Vec<&str> = markdown.lines().collect();
    for (heading, text) in [
        ("## Scope", CLIENT_LINE),
        ("## Financial details", replica_line),
    ] {
        let at = lines.iter().position(|l| *l == heading).context(heading)?;
        assert_eq!(lines[at + 1], text, "under {heading}:\n{markdown}");
    }
    assert_eq!(
        lines.last(),
        Some(&"Invoices go out **monthly**."),
        "{markdown}"
    );
    for text in [CLIENT_LINE, "Invoices go out", replica_line] {
        assert_eq!(markdown.matches(text).count(), 1, "{text} in\n{markdown}");
    }
    Ok(())
}

#[test]
fn a_client_offline_comments_and_edits_keeps_them_across_a_reload_and_they_arrive() -> Result<()> {
    let world = World::new("web-offline")?;
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Write)?;
    world.staff_opens(&mut browser, "staff", Viewport::LAPTOP)?;
    browser.wait_for("client", Until::OfflineReady, WAIT)?;
    browser.wait_for("client", Until::Online(true), WAIT)?;
    browser.wait_for("client", Until::Waiting(0), WAIT)?;

    let comment = "Written on the train: can buyers cancel an order?";
    let edit = "Orders can be cancelled within a day.";
    browser.offline("client", true)?;
    browser.wait_for("client", Until::Online(false), WAIT)?;
    browser.comment("client", comment)?;
    let drivers = world.index_under("Business drivers")?;
    browser.type_text("client", edit, At::Index(drivers))?;
    // One change for the comment, one per key press.
    let waiting = 1 + edit.chars().count() as u64;
    browser.wait_for("client", Until::Waiting(waiting), WAIT)?;

    // Reloaded offline: the app, the edits and the count are still there.
    browser.reload("client")?;
    browser.wait_for("client", Until::Comment(comment), WAIT)?;
    browser.wait_for("client", Until::EditorText(edit), WAIT)?;
    browser.wait_for("client", Until::Waiting(waiting), WAIT)?;
    let offline = browser.state("client")?;
    assert_eq!(
        offline.status.as_deref(),
        Some("offline"),
        "{:?}",
        offline.raw
    );
    assert!(
        offline
            .status_text
            .contains(&format!("{waiting} edits waiting")),
        "{}",
        offline.status_text
    );
    // Nothing reached the relay meanwhile. (A replica runs one connection
    // to a relay at a time: the live sync starts after this one.)
    world.sync()?;
    assert!(!world.comments()?.iter().any(|c| c == comment));
    assert!(!world.body_markdown()?.contains(edit));

    let _live = world.live();
    browser.offline("client", false)?;
    browser.wait_for("client", Until::Online(true), WAIT)?;
    browser.wait_for("client", Until::Waiting(0), WAIT)?;
    world.wait_for_staff("the offline comment and edit", WAIT, |_| {
        Ok(world.comments()?.iter().any(|c| c == comment) && world.body_markdown()?.contains(edit))
    })?;
    browser.wait_for("staff", Until::Comment(comment), WAIT)?;
    browser.wait_for("staff", Until::EditorText(edit), WAIT)?;
    let markdown = world.body_markdown()?;
    assert!(
        markdown.contains(&format!("## Business drivers\n{edit}\n")),
        "{markdown}"
    );
    Ok(())
}

#[test]
fn a_comment_only_client_cannot_change_the_document_and_a_forced_change_is_refused() -> Result<()> {
    let world = World::new("web-read-only")?;
    let live = world.live();
    let mut browser = shared()?;
    world.client_joins(&mut browser, "client", "Carla Client", Level::Comment)?;
    world.staff_opens(&mut browser, "staff", Viewport::LAPTOP)?;

    let client = browser.state("client")?;
    assert_eq!(client.read_only, Some(true), "{:?}", client.raw);
    let reason = client.read_only_reason.context("no reason is shown")?;
    assert!(
        reason.contains("You can comment on this document"),
        "{reason}"
    );
    assert!(browser.editor("client")?.read_only);
    // Sam's page, the control, may write.
    let staff = browser.state("staff")?;
    assert_eq!(
        (staff.read_only, staff.read_only_reason),
        (Some(false), None)
    );
    assert!(!browser.editor("staff")?.read_only);

    // Commenting is what the client may do.
    let question = "Could the portal send order updates by text message?";
    browser.comment("client", question)?;
    world.wait_for_staff("the client's comment", WAIT, |_| {
        Ok(world.comments()?.iter().any(|c| c == question))
    })?;
    browser.wait_for("staff", Until::Comment(question), WAIT)?;

    // A change forced through the page's replica is refused, and said.
    let doc = world.requirements.to_string();
    browser.force_change("client", &doc, "title", "Hacked")?;
    browser.wait_for("client", Until::Notice("The relay refused your edit"), WAIT)?;
    let notice = browser
        .state("client")?
        .notices
        .into_iter()
        .find(|n| n.key == format!("rejected:{doc}"))
        .context("no refusal notice for the document")?;
    assert!(notice.text.contains("may read"), "{}", notice.text);
    assert!(notice.text.contains(TITLE), "{}", notice.text);
    // One connection to a relay at a time: the live sync stops first.
    world.block_on(live.stop());
    world.sync()?;
    assert_eq!(world.title()?, TITLE, "the forced title reached staff");
    let events: Vec<String> = world
        .staff_api
        .audit(&world.workspace, None, Some(world.requirements))?
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert!(events.iter().any(|e| e == "change-refused"), "{events:?}");
    browser.wait_for("staff", Until::Comment(WELCOME), WAIT)?;
    Ok(())
}
