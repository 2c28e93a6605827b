use rapport_model::{Relationship, Requirements};

use super::*;
use crate::commands::records::testing::Home;

fn record(home: &Home) -> String {
    let repo = home.repo();
    repo.create(|tx| Requirements::new("Portal", "").write(tx))
        .unwrap()
        .0
        .to_string()
}

fn ids(shown: &Shown) -> Vec<String> {
    let comments = shown.json.as_array().expect("lists print arrays");
    comments
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn add_reply_list_and_resolve() {
    let home = Home::new("comment-flow");
    let ctx = home.context();
    let doc = record(&home);
    let first = add(&ctx, &doc[..6], "Is the budget final?", None).unwrap();
    let question = first.json["id"].as_str().unwrap().to_owned();
    let thread = first.json["thread"].as_str().unwrap().to_owned();
    let answer = add(&ctx, &doc, "Yes, signed off.", Some(&question[..4])).unwrap();
    assert_eq!(
        answer.json["thread"],
        thread.as_str(),
        "one thread per record"
    );
    let answer = answer.json["id"].as_str().unwrap().to_owned();

    let shown = list(&ctx, &doc).unwrap();
    assert_eq!(ids(&shown), [question.clone(), answer.clone()]);
    assert_eq!(shown.json[1]["reply_to"], question.as_str());
    assert_eq!(
        shown.json[0]["author"],
        home.repo().public_key().to_string()
    );
    assert!(
        shown.human.contains("↳ Yes, signed off.") && shown.human.contains("me"),
        "{}",
        shown.human
    );

    let shown = resolve(&ctx, &doc, &question, true).unwrap();
    assert_eq!(shown.json["resolved"], true);
    assert_eq!(list(&ctx, &doc).unwrap().json[0]["resolved"], true);
    resolve(&ctx, &doc, &question, false).unwrap();
    assert_eq!(list(&ctx, &doc).unwrap().json[0]["resolved"], false);

    let index = home.repo().index().unwrap();
    let threads: Vec<_> = index
        .iter()
        .filter(|(_, e)| e.kind.as_str() == "thread")
        .collect();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].1.record.as_deref(), Some(doc.as_str()));
}

#[test]
fn comments_go_on_customers_and_tasks_too_and_mention_people() {
    let home = Home::new("comment-kinds");
    let ctx = home.context();
    let customer = {
        let repo = home.repo();
        let acme = rapport_model::Customer::new("Acme", Relationship::Client);
        repo.create(|tx| acme.write(tx)).unwrap().0.to_string()
    };
    let someone = PublicKey::from_bytes([5; 32]);
    add(
        &ctx,
        &customer,
        &format!("@{someone}, can you call them?"),
        None,
    )
    .unwrap();
    let shown = list(&ctx, &customer).unwrap();
    assert_eq!(shown.json[0]["mentions"], json!([someone.to_string()]));
}

#[test]
fn bad_input_writes_nothing() {
    let home = Home::new("comment-bad");
    let ctx = home.context();
    let doc = record(&home);
    let count = || home.repo().document_ids().unwrap().len();
    assert!(
        add(&ctx, "nope", "hi", None)
            .unwrap_err()
            .to_string()
            .contains("no customer, task or doc")
    );
    assert!(add(&ctx, &doc, "  ", None).is_err());
    let error = add(&ctx, &doc, "hi", Some("abc")).unwrap_err().to_string();
    assert!(
        error.contains("no comment with an id starting `abc`"),
        "{error}"
    );
    assert_eq!(count(), 1, "no thread made");
    add(&ctx, &doc, "hi", None).unwrap();
    assert!(resolve(&ctx, &doc, "zz", true).is_err());
    assert!(list(&ctx, &doc).unwrap().json[0]["resolved"] == false);
}

#[test]
fn answers_sit_under_what_they_answer() {
    let me = PublicKey::from_bytes([1; 32]);
    let thread = DocumentId::from_bytes([2; 16]);
    let comment = |id: &str, at: i64, to: Option<&str>| {
        let mut c = Comment::new(id, &me, at, id);
        c.reply_to = to.map(str::to_owned);
        (thread, c)
    };
    let comments = [
        comment("a", 1, None),
        comment("b", 2, None),
        comment("c", 3, Some("a")),
        comment("d", 4, Some("c")),
        comment("e", 5, Some("gone")),
    ];
    let order: Vec<(usize, &str)> = threaded(&comments)
        .into_iter()
        .map(|(d, c)| (d, c.id.as_str()))
        .collect();
    assert_eq!(order, [(0, "a"), (1, "c"), (2, "d"), (0, "b"), (0, "e")]);
    let error = find(&comments, "").unwrap_err().to_string();
    assert!(error.contains("no comment"), "{error}");
}

#[test]
fn threads_started_apart_are_read_together() {
    let home = Home::new("comment-two-threads");
    let ctx = home.context();
    let doc = record(&home);
    let record_id: DocumentId = doc.parse().unwrap();
    let me = home.repo().public_key();
    let made: Vec<DocumentId> = (0..2)
        .map(|n| {
            let mut thread = Thread::new(&record_id);
            thread.add(Comment::new(
                format!("c{n}"),
                &me,
                n,
                format!("from replica {n}"),
            ));
            home.repo().create(|tx| thread.write(tx)).unwrap().0
        })
        .collect();
    let smallest = made.iter().map(ToString::to_string).min().unwrap();
    assert_eq!(ids(&list(&ctx, &doc).unwrap()), ["c0", "c1"]);
    let added = add(&ctx, &doc, "after the merge", Some("c1")).unwrap();
    assert_eq!(added.json["thread"], smallest, "the smallest id");
    let resolved = resolve(&ctx, &doc, "c1", true).unwrap();
    assert_eq!(
        resolved.json["thread"],
        made[1].to_string(),
        "where the comment is"
    );
}

#[test]
fn mentions_name_members_by_name_first_name_or_key_prefix() {
    let sam = PublicKey::from_bytes([7; 32]);
    let sara = PublicKey::from_bytes([8; 32]);
    let people = vec![
        rapport_model::api::Person {
            key: sam,
            name: Some("Sam Staff".into()),
        },
        rapport_model::api::Person {
            key: sara,
            name: Some("Sara Staff".into()),
        },
    ];
    let prefix: String = sara.to_string().chars().take(6).collect();
    assert_eq!(super::mentions("@sam, please", &people).unwrap(), [sam]);
    assert_eq!(super::mentions("ask @SamStaff", &people).unwrap(), [sam]);
    let both = super::mentions(&format!("@Sam and @{prefix}"), &people).unwrap();
    assert_eq!(both.len(), 2);
    // An @word naming nobody is text; a whole key needs no list.
    assert!(super::mentions("at @10am", &people).unwrap().is_empty());
    assert_eq!(super::mentions(&format!("@{sam}"), &[]).unwrap(), [sam]);
    // Two members called Sam are not guessed between.
    let mut twins = people.clone();
    twins[1].name = Some("Sam Other".into());
    let error = super::mentions("@Sam", &twins).unwrap_err().to_string();
    assert!(error.contains("2 members"), "{error}");
}
