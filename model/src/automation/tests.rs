//! The grammar's round trips, its errors, conditions and templates.

use super::*;

#[test]
fn the_shipped_examples_parse_as_intended() {
    let rules: Vec<Rule> = EXAMPLES
        .iter()
        .map(|(name, text)| Rule::parse(text).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    assert_eq!(
        rules[0].event,
        Event::FieldChanges {
            kind: RecordKind::Task,
            field: "status".into(),
            to: Some("done".into())
        }
    );
    assert_eq!(
        rules[0].conditions,
        [Condition {
            field: "tags".into(),
            test: Test::Has,
            value: "order".into()
        }]
    );
    let Action::CreateTask { fields } = &rules[0].action else {
        panic!("{:?}", rules[0].action)
    };
    assert_eq!(fields[0], ("title".into(), "Invoice: {title}".into()));
    assert_eq!(
        rules[1].action,
        Action::Comment {
            text: "Thank you! Tell us how we did: {form:feedback}".into()
        }
    );
    let Action::CreateTask { fields } = &rules[2].action else {
        panic!("{:?}", rules[2].action)
    };
    assert!(fields.contains(&("due".into(), "+7d".into())));
}

#[test]
fn printing_gives_back_the_same_rule() {
    let texts = EXAMPLES.iter().map(|(_, t)| *t).chain([
        "when form submitted then webhook https://example.com/hook",
        r#"when form submitted "Bug report" if priority is not low and tags has "a b" then set priority = urgent"#,
        "when document shared then comment \"say \\\"hi\\\" \\\\ bye\"",
        "when doc.title changes then set title=if",
    ]);
    for text in texts {
        let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = rule.to_string();
        assert_eq!(Rule::parse(&printed), Ok(rule), "{text} → {printed}");
    }
}

#[test]
fn mistakes_say_what_was_expected_and_where() {
    let cases = [
        ("", "expected `when` at the end", 1),
        (
            "whenever task.status changes",
            "expected `when`, found `whenever`",
            1,
        ),
        (
            "when task.status then set a=b",
            "expected `changes`, found `then`",
            3,
        ),
        (
            "when invoice.total changes then set a=b",
            "`invoice` is not a record kind",
            2,
        ),
        (
            "when task.status changes then explode",
            "`explode` is not an action",
            5,
        ),
        (
            "when task.status changes if tags contains x then set a=b",
            "`contains` is not a test",
            6,
        ),
        (
            "when task.status changes then create task due=+1d",
            "needs a title",
            8,
        ),
        (
            "when task.status changes then create task title=x due=soon",
            "`due=soon`",
            8,
        ),
        (
            "when task.status changes then webhook ftp://x",
            "not an http(s) URL",
            6,
        ),
        (
            "when task.status changes then comment \"open",
            "a quote is not closed",
            6,
        ),
        (
            "when task.status changes then set a=b extra",
            "unexpected `extra`",
            7,
        ),
    ];
    for (text, message, position) in cases {
        let err = Rule::parse(text).expect_err(text);
        assert!(err.message.contains(message), "{text}: {err}");
        assert_eq!(err.position, position, "{text}: {err}");
    }
}

#[test]
fn conditions_test_text_and_lists() {
    let rule = Rule::parse(
        "when task.status changes if tags has order and priority is not low then set a=b",
    )
    .unwrap();
    let record = |tags: &[&str], priority: &str| {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let priority = priority.to_owned();
        move |field: &str| match field {
            "tags" => FieldValue::List(tags.clone()),
            "priority" => FieldValue::Text(priority.clone()),
            _ => FieldValue::Missing,
        }
    };
    assert!(rule.conditions_hold(record(&["vip", "order"], "high")));
    assert!(!rule.conditions_hold(record(&["vip"], "high")));
    assert!(!rule.conditions_hold(record(&["order"], "low")));
    let missing = Rule::parse("when task.status changes if owner is sam then set a=b").unwrap();
    assert!(!missing.conditions_hold(|_| FieldValue::Missing));
}

#[test]
fn templates_fill_known_fields_and_keep_the_rest() {
    let lookup = |name: &str| match name {
        "title" => Some("Order 7".to_owned()),
        "form:feedback" => Some("http://relay/forms/f1".to_owned()),
        _ => None,
    };
    assert_eq!(render("Invoice: {title}", lookup), "Invoice: Order 7");
    assert_eq!(
        render("{title} / {form:feedback} / {nope} / {{x}} / {open", lookup),
        "Order 7 / http://relay/forms/f1 / {nope} / {x} / {open"
    );
    assert_eq!(render("", lookup), "");
}

#[test]
fn due_values_are_days() {
    assert_eq!(due_in_days("+7d"), Some(7));
    assert_eq!(due_in_days("+0"), Some(0));
    assert_eq!(due_in_days("3d"), Some(3));
    for bad in ["", "+", "d", "-3d", "+3w", "99999999999d"] {
        assert_eq!(due_in_days(bad), None, "{bad}");
    }
}
