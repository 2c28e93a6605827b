//! Reading a record's fields out of its automerge document, now or as of
//! some heads, and finding the events its new changes make.

use automerge::{Automerge, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use super::{Event, FieldValue, RecordKind, Rule};

/// A field of the record's root map as of `heads` (`None`: now).
///
/// Strings, numbers and booleans read as text, text objects as their text,
/// lists as their items' text; anything else is missing.
pub fn field(doc: &Automerge, name: &str, heads: Option<&[ChangeHash]>) -> FieldValue {
    let got = match heads {
        Some(heads) => doc.get_at(ROOT, name, heads),
        None => doc.get(ROOT, name),
    };
    let Ok(Some((value, id))) = got else {
        return FieldValue::Missing;
    };
    match value {
        Value::Scalar(scalar) => scalar_text(&scalar).map_or(FieldValue::Missing, FieldValue::Text),
        Value::Object(ObjType::Text) => {
            let text = match heads {
                Some(heads) => doc.text_at(&id, heads),
                None => doc.text(&id),
            };
            text.map_or(FieldValue::Missing, FieldValue::Text)
        }
        Value::Object(ObjType::List) => {
            let len = match heads {
                Some(heads) => doc.length_at(&id, heads),
                None => doc.length(&id),
            };
            let items = (0..len)
                .filter_map(|i| {
                    let item = match heads {
                        Some(heads) => doc.get_at(&id, i, heads),
                        None => doc.get(&id, i),
                    };
                    match item {
                        Ok(Some((Value::Scalar(s), _))) => scalar_text(&s),
                        _ => None,
                    }
                })
                .collect();
            FieldValue::List(items)
        }
        Value::Object(_) => FieldValue::Missing,
    }
}

fn scalar_text(scalar: &ScalarValue) -> Option<String> {
    match scalar {
        ScalarValue::Str(s) => Some(s.to_string()),
        ScalarValue::Int(n) => Some(n.to_string()),
        ScalarValue::Uint(n) => Some(n.to_string()),
        ScalarValue::F64(n) => Some(n.to_string()),
        ScalarValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The record's kind, from its header (`kind` at the root).
pub fn kind(doc: &Automerge) -> Option<RecordKind> {
    match field(doc, "kind", None) {
        FieldValue::Text(kind) => match kind.as_str() {
            "task" => Some(RecordKind::Task),
            "customer" => Some(RecordKind::Customer),
            "requirements" => Some(RecordKind::Doc),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the changes from `before` to now fire `rule`'s field event on
/// this record, and its conditions hold on the record as it is now.
///
/// A field "changes" when its value at `before` differs from its value now;
/// with `to`, only when it now equals `to` and did not before. A record
/// that did not exist at `before` (empty heads) changes every field it has.
pub fn fires(rule: &Rule, doc: &Automerge, before: &[ChangeHash]) -> bool {
    let Event::FieldChanges {
        kind: wanted,
        field: name,
        to,
    } = &rule.event
    else {
        return false;
    };
    if kind(doc) != Some(*wanted) {
        return false;
    }
    let old = if before.is_empty() {
        FieldValue::Missing
    } else {
        field(doc, name, Some(before))
    };
    let new = field(doc, name, None);
    let changed = match to {
        Some(to) => new.as_text() == *to && old.as_text() != *to,
        None => old != new,
    };
    changed && rule.conditions_hold(|f| field(doc, f, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn task(status: &str, tags: &[&str]) -> Automerge {
        let mut doc = Automerge::new();
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "kind", "task")?;
            tx.put(ROOT, "status", status)?;
            let title = tx.put_object(ROOT, "title", ObjType::Text)?;
            tx.splice_text(&title, 0, 0, "Order 7")?;
            let list = tx.put_object(ROOT, "tags", ObjType::List)?;
            for (i, tag) in tags.iter().enumerate() {
                tx.insert(&list, i, *tag)?;
            }
            Ok(())
        })
        .unwrap();
        doc
    }

    fn set(doc: &mut Automerge, field: &str, value: &str) {
        doc.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, field, value)?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn fields_read_now_and_as_of_old_heads() {
        let mut doc = task("open", &["order", "vip"]);
        let before = doc.get_heads();
        set(&mut doc, "status", "done");
        assert_eq!(field(&doc, "status", None), FieldValue::Text("done".into()));
        assert_eq!(
            field(&doc, "status", Some(&before)),
            FieldValue::Text("open".into())
        );
        assert_eq!(
            field(&doc, "title", None),
            FieldValue::Text("Order 7".into())
        );
        assert_eq!(
            field(&doc, "tags", None),
            FieldValue::List(vec!["order".into(), "vip".into()])
        );
        assert_eq!(field(&doc, "nothing", None), FieldValue::Missing);
        assert_eq!(kind(&doc), Some(RecordKind::Task));
    }

    #[test]
    fn a_rule_fires_when_its_field_moves_to_the_value_and_conditions_hold() {
        let rule =
            Rule::parse("when task.status changes to done if tags has order then set a=b").unwrap();
        let mut doc = task("open", &["order"]);
        let before = doc.get_heads();
        set(&mut doc, "priority", "high");
        assert!(!fires(&rule, &doc, &before), "another field changed");
        let before = doc.get_heads();
        set(&mut doc, "status", "done");
        assert!(fires(&rule, &doc, &before));
        let after = doc.get_heads();
        set(&mut doc, "status", "done");
        assert!(!fires(&rule, &doc, &after), "already done before");

        let mut other = task("open", &["query"]);
        let before = other.get_heads();
        set(&mut other, "status", "done");
        assert!(!fires(&rule, &other, &before), "the condition fails");

        let created_done = task("done", &["order"]);
        assert!(fires(&rule, &created_done, &[]), "new records fire too");

        let customer_rule =
            Rule::parse("when customer.status changes to done then set a=b").unwrap();
        assert!(!fires(&customer_rule, &doc, &before), "wrong kind");
    }
}
