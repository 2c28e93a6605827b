use rapport_model::Date;

use super::*;
use crate::commands::records::testing::Home;

fn add_args(name: &str, kind: &str) -> AddArgs {
    AddArgs {
        name: name.into(),
        kind: kind.into(),
        contact: None,
        email: None,
        stage: None,
        score: None,
        rep: None,
        acquired: None,
        tags: Vec::new(),
        fields: Vec::new(),
    }
}

fn list_args() -> ListArgs {
    ListArgs {
        stage: None,
        kind: None,
        rep: None,
        tag: None,
        not_contacted_days: None,
        archived: false,
    }
}

fn id_of(shown: &Shown) -> String {
    shown.json["id"]
        .as_str()
        .expect("add prints an id")
        .to_owned()
}

fn strings(changes: &[&str]) -> Vec<String> {
    changes.iter().map(|change| (*change).to_owned()).collect()
}

#[test]
fn add_show_set_and_list() {
    let home = Home::new("customer-flow");
    let ctx = home.context();
    let mut args = add_args("Acme", "client");
    args.email = Some("buyer@acme.test".into());
    args.rep = Some("me".into());
    args.tags = vec!["retainer".into()];
    args.fields = vec!["industry=retail".into()];
    let id = id_of(&add(&ctx, &args).unwrap());
    add(&ctx, &add_args("Bolt", "customer")).unwrap();

    let shown = show(&ctx, &id[..6]).unwrap();
    assert_eq!(shown.json["id"], id.as_str());
    assert_eq!(shown.json["relationship"], "client");
    assert_eq!(shown.json["fields"]["industry"], "retail");
    assert!(shown.human.contains("email:") && shown.human.contains("buyer@acme.test"));

    let changes = strings(&[
        "stage=won",
        "score=90",
        "field.industry=",
        "last_contact=2024-01-31",
    ]);
    let shown = set(&ctx, &id, &changes).unwrap();
    assert_eq!(
        (shown.json["stage"].as_str(), shown.json["score"].as_i64()),
        (Some("won"), Some(90))
    );
    assert_eq!(shown.json["fields"], json!({}));

    let all = list(&ctx, &list_args()).unwrap();
    let names: Vec<&str> = all
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Acme", "Bolt"]);
    assert!(all.human.starts_with("ID") && all.human.contains("Bolt"));

    let mut won = list_args();
    won.stage = Some("won".into());
    won.rep = Some("me".into());
    assert_eq!(list(&ctx, &won).unwrap().json.as_array().unwrap().len(), 1);
    let mut stale = list_args();
    stale.not_contacted_days = Some("30".into());
    assert_eq!(
        list(&ctx, &stale).unwrap().json.as_array().unwrap().len(),
        2,
        "old and never"
    );
    run(&ctx, CustomerCommand::Touch { id: id.clone() }).unwrap();
    assert_eq!(
        list(&ctx, &stale).unwrap().json.as_array().unwrap().len(),
        1,
        "touched today"
    );
}

#[test]
fn bad_input_writes_nothing() {
    let home = Home::new("customer-bad");
    let ctx = home.context();
    let id = id_of(&add(&ctx, &add_args("Acme", "client")).unwrap());
    let heads = || {
        let repo = home.repo();
        repo.heads(id.parse().unwrap()).unwrap()
    };
    let before = heads();
    let cases: [(&[&str], &str); 6] = [
        (
            &["stage=won", "colour=red"],
            "unknown customer field `colour`",
        ),
        (&["stage"], "not KEY=VALUE"),
        (&["acquired=2024-13-01"], "YYYY-MM-DD"),
        (&["stage=winning"], "unknown stage"),
        (&["score=lots"], "not a whole number"),
        (&["rep=bob"], "not a public key"),
    ];
    for (changes, expected) in cases {
        let error = set(&ctx, &id, &strings(changes)).unwrap_err().to_string();
        assert!(
            error.contains(expected) && !error.contains('\n'),
            "{changes:?}: {error}"
        );
    }
    assert!(
        set(&ctx, "nope", &strings(&["stage=won"]))
            .unwrap_err()
            .to_string()
            .contains("no customer")
    );
    assert_eq!(heads(), before);

    let count = || home.repo().index().unwrap().len();
    assert!(
        add(&ctx, &add_args("Zed", "partner"))
            .unwrap_err()
            .to_string()
            .contains("unknown kind")
    );
    let mut bad_field = add_args("Zed", "client");
    bad_field.fields = vec!["industry".into()];
    assert!(
        add(&ctx, &bad_field)
            .unwrap_err()
            .to_string()
            .contains("--field product=hosting")
    );
    assert_eq!(count(), 1);
}

#[test]
fn filters_read_the_index() {
    let me = PublicKey::from_bytes([1; 32]);
    let entry = |stage: &str, last: Option<&str>| IndexEntry {
        stage: Some(stage.into()),
        relationship: Some("client".into()),
        last_contact: last.map(str::to_owned),
        tags: vec!["emea".into()],
        ..IndexEntry::from_bytes(br#"{"kind":"customer"}"#).unwrap()
    };
    let mut args = list_args();
    args.stage = Some("Lead".into());
    args.tag = Some("emea".into());
    let filter = args.filter(&me).unwrap();
    assert!(filter.keeps(&entry("lead", None)));
    assert!(!filter.keeps(&entry("won", None)));
    let stale = Filter {
        contacted_by: Some("2024-01-10".parse::<Date>().unwrap().days_since_epoch()),
        ..Filter::default()
    };
    assert!(stale.keeps(&entry("lead", Some("2024-01-10"))));
    assert!(!stale.keeps(&entry("lead", Some("2024-01-11"))));
    args.not_contacted_days = Some("-1".into());
    assert!(args.filter(&me).is_err());
}
