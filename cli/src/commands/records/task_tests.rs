use rapport_model::{Customer, Relationship};

use super::*;
use crate::commands::records::testing::Home;

fn add_args(title: &str) -> AddArgs {
    AddArgs {
        title: title.into(),
        customer: None,
        priority: None,
        due: None,
        assignees: Vec::new(),
        tags: Vec::new(),
        parent: None,
        repeat: None,
        fields: Vec::new(),
    }
}

fn list_args() -> ListArgs {
    ListArgs {
        status: None,
        assignee: None,
        customer: None,
        overdue: false,
        archived: false,
    }
}

fn id_of(shown: &Shown) -> String {
    shown.json["id"]
        .as_str()
        .expect("add prints an id")
        .to_owned()
}

fn count(shown: &Shown) -> usize {
    shown.json.as_array().expect("lists print arrays").len()
}

#[test]
fn add_check_done_and_list() {
    let home = Home::new("task-flow");
    let ctx = home.context();
    let acme = {
        let repo = home.repo();
        repo.create(|tx| Customer::new("Acme", Relationship::Client).write(tx))
            .unwrap()
            .0
            .to_string()
    };
    let mut args = add_args("Send the offer");
    args.customer = Some(acme[..5].into());
    args.due = Some("2000-01-31".into());
    args.assignees = vec!["me".into(), "me".into()];
    args.priority = Some("urgent".into());
    let offer = id_of(&add(&ctx, &args).unwrap());
    let mut sub = add_args("Price it");
    sub.parent = Some(offer.clone());
    let price = id_of(&add(&ctx, &sub).unwrap());

    let shown = show(&ctx, &offer).unwrap();
    assert_eq!(shown.json["customer"], acme.as_str());
    assert_eq!(shown.json["subtasks"], json!([price]));
    assert_eq!(shown.json["assignees"].as_array().unwrap().len(), 1);
    assert_eq!(show(&ctx, &price).unwrap().json["parent"], offer.as_str());

    let shown = check(&ctx, &offer, "Collect the logo", false).unwrap();
    assert_eq!(
        shown.json["checklist"],
        json!([{ "item": "Collect the logo", "done": false }])
    );
    let shown = check(&ctx, &offer, "Collect the logo", true).unwrap();
    assert_eq!(
        shown.json["checklist"],
        json!([{ "item": "Collect the logo", "done": true }])
    );

    let overdue = ListArgs {
        overdue: true,
        ..list_args()
    };
    assert_eq!(count(&list(&ctx, &overdue).unwrap()), 1);
    let mine = ListArgs {
        assignee: Some("me".into()),
        customer: Some(acme.clone()),
        ..list_args()
    };
    assert_eq!(count(&list(&ctx, &mine).unwrap()), 1);
    let all = list(&ctx, &list_args()).unwrap();
    assert_eq!(count(&all), 2);
    assert!(
        all.human.contains("1/1") && all.human.contains("Price it"),
        "{}",
        all.human
    );

    run(&ctx, TaskCommand::Done { id: offer.clone() }).unwrap();
    assert_eq!(
        count(&list(&ctx, &overdue).unwrap()),
        0,
        "done is not overdue"
    );
    let done = ListArgs {
        status: Some("done".into()),
        ..list_args()
    };
    assert_eq!(list(&ctx, &done).unwrap().json[0]["id"], offer.as_str());
}

#[test]
fn set_changes_known_fields_and_refuses_others() {
    let home = Home::new("task-set");
    let ctx = home.context();
    let id = id_of(&add(&ctx, &add_args("Report")).unwrap());
    let changes: Vec<String> = [
        "status=in-progress",
        "due=2025-04-15",
        "assignees=me",
        "tags=a, b",
        "field.product=seo",
        "repeat=monthly",
    ]
    .map(str::to_owned)
    .to_vec();
    let shown = set(&ctx, &id, &changes).unwrap();
    assert_eq!(shown.json["status"], "in_progress");
    assert_eq!(shown.json["due"], "2025-04-15");
    assert_eq!(shown.json["tags"], json!(["a", "b"]));
    assert_eq!(shown.json["fields"], json!({ "product": "seo" }));
    assert_eq!(shown.json["repeat"], "monthly");

    let before = home.repo().heads(id.parse().unwrap()).unwrap();
    for (change, expected) in [
        ("owner=me", "unknown task field `owner`"),
        ("due=15/04/2025", "YYYY-MM-DD"),
        ("due", "no `=`"),
        ("priority=asap", "unknown priority"),
        ("customer=zzz", "no customer"),
    ] {
        let error = set(&ctx, &id, &["title=New".to_owned(), change.to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected) && !error.contains('\n'),
            "{change}: {error}"
        );
    }
    assert!(check(&ctx, &id, "  ", true).is_err());
    assert_eq!(home.repo().heads(id.parse().unwrap()).unwrap(), before);
}

#[test]
fn bad_add_writes_nothing() {
    let home = Home::new("task-bad");
    let ctx = home.context();
    for args in [
        AddArgs {
            due: Some("2025-02-30".into()),
            ..add_args("x")
        },
        AddArgs {
            customer: Some("nope".into()),
            ..add_args("x")
        },
        AddArgs {
            parent: Some("nope".into()),
            ..add_args("x")
        },
        AddArgs {
            assignees: vec!["bob".into()],
            ..add_args("x")
        },
        AddArgs {
            fields: vec!["product".into()],
            ..add_args("x")
        },
    ] {
        assert!(add(&ctx, &args).is_err(), "{args:?}");
    }
    assert!(home.repo().index().unwrap().is_empty());
}
