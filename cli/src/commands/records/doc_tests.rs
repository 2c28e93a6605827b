use super::*;
use crate::commands::records::testing::Home;

fn new_doc(ctx: &Context, template: Option<&str>) -> DocumentId {
    let shown = new(ctx, "Buyer portal", None, template).unwrap();
    shown.json["id"].as_str().unwrap().parse().unwrap()
}

fn body(home: &Home, id: DocumentId) -> String {
    lookup::read_doc_body(&home.repo(), id).unwrap().1
}

/// Changes the body as another replica's synced edit would.
fn edit_elsewhere(home: &Home, id: DocumentId, find: &str, insert: &str) {
    let repo = home.repo();
    repo.change(id, |tx| {
        let mut body = Requirements::body_markdown(tx)?;
        let at = body.find(find).expect("the text to insert before");
        body.insert_str(at, insert);
        Requirements::set_body_markdown(tx, &body)
    })
    .unwrap();
}

#[test]
fn new_list_show_and_append() {
    let home = Home::new("doc-flow");
    let ctx = home.context();
    let id = new_doc(&ctx, Some("brd"));
    let shown = show(&ctx, &id.to_string()[..6]).unwrap();
    assert!(
        shown.json["body"]
            .as_str()
            .unwrap()
            .starts_with("## Scope\n")
    );
    assert!(shown.human.contains("title:") && shown.human.contains("## Timeline and deadlines"));
    assert_eq!(list(&ctx, false).unwrap().json[0]["title"], "Buyer portal");

    let plain = new_doc(&ctx, None);
    append(&ctx, &plain.to_string(), "First.").unwrap();
    let shown = append(&ctx, &plain.to_string(), "Second.\n").unwrap();
    assert_eq!(shown.json["body"], "First.\nSecond.");
    assert_eq!(paragraph("no newline", "x\n"), "no newline\nx");
    assert_eq!(
        paragraph("## Scope\n", "x"),
        "## Scope\nx",
        "an empty last line is filled"
    );
}

#[test]
fn bad_input_writes_nothing() {
    let home = Home::new("doc-bad");
    let ctx = home.context();
    let error = new(&ctx, "x", None, Some("prd")).unwrap_err().to_string();
    assert!(
        error.contains("no template is called `prd`") && error.contains("--template brd"),
        "{error}"
    );
    assert!(
        new(&ctx, "x", Some("nope"), None)
            .unwrap_err()
            .to_string()
            .contains("no customer")
    );
    assert!(home.repo().index().unwrap().is_empty());
    let id = new_doc(&ctx, None);
    assert!(append(&ctx, &id.to_string(), " ").is_err());
    assert!(
        show(&ctx, "nope")
            .unwrap_err()
            .to_string()
            .contains("rapport doc list")
    );
    let heads = home.repo().heads(id).unwrap();
    assert!(
        edit(&ctx, &id.to_string(), "false")
            .unwrap_err()
            .to_string()
            .contains("nothing was written")
    );
    assert_eq!(home.repo().heads(id).unwrap(), heads);
}

#[test]
fn edit_writes_only_what_changed() {
    let home = Home::new("doc-edit");
    let ctx = home.context();
    let id = new_doc(&ctx, Some("brd"));
    let heads = home.repo().heads(id).unwrap();
    let shown = edit(&ctx, &id.to_string(), "true").unwrap();
    assert!(shown.human.starts_with("no change"));
    assert_eq!(home.repo().heads(id).unwrap(), heads, "no change, no write");

    let shown = edit(
        &ctx,
        &id.to_string(),
        "sed -i -e 's/^## Scope$/## Scope of work/'",
    )
    .unwrap();
    assert!(shown.human.starts_with("updated doc"));
    assert!(body(&home, id).starts_with("## Scope of work\n\n## Business drivers\n"));
}

#[test]
fn an_edit_synced_in_while_the_editor_was_open_survives() {
    let home = Home::new("doc-edit-concurrent");
    let ctx = home.context();
    let id = new_doc(&ctx, Some("brd"));
    let original = body(&home, id);
    edit_elsewhere(&home, id, "## Timeline", "Budget: 40k.\n\n");
    let edited = original.replace("## Scope\n\n", "## Scope\n\nA self-service portal.\n");
    finish(&ctx, id, &original, &edited, Draft::write(&edited).unwrap()).unwrap();
    let now = body(&home, id);
    assert!(
        now.contains("## Scope\n\nA self-service portal.\n"),
        "{now}"
    );
    assert!(now.contains("Budget: 40k.\n\n## Timeline"), "{now}");
}

#[test]
fn an_edit_clashing_with_one_synced_in_is_kept_aside() {
    let home = Home::new("doc-edit-clash");
    let ctx = home.context();
    let id = new_doc(&ctx, Some("brd"));
    let original = body(&home, id);
    edit_elsewhere(&home, id, "Scope", "Project ");
    let before = home.repo().heads(id).unwrap();
    let edited = original.replacen("## Scope", "## Goals", 1);
    let error = finish(&ctx, id, &original, &edited, Draft::write(&edited).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("nothing was written") && error.contains("your text is in"),
        "{error}"
    );
    assert_eq!(home.repo().heads(id).unwrap(), before);
    let kept = error
        .split("your text is in ")
        .nth(1)
        .unwrap()
        .split(" (")
        .next()
        .unwrap();
    assert_eq!(std::fs::read_to_string(kept).unwrap(), edited);
    std::fs::remove_file(kept).unwrap();
}
