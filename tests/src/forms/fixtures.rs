//! A support form, a submission that passes it, and limits that never
//! get in the way.

use rapport_client::api::{FieldType, FormField, NewForm};
use rapport_server::FormLimits;
use serde_json::{Value, json};

/// A field of a new form, without a label.
fn field(name: &str, kind: FieldType, required: bool, choices: &[&str]) -> FormField {
    FormField {
        name: name.into(),
        label: String::new(),
        kind,
        required,
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Six fields: four required, a dropdown of products and one of
/// priorities.
pub fn support_form() -> NewForm {
    NewForm {
        name: "support".into(),
        title: Some("Support request".into()),
        description: Some("Tell us what went wrong.".into()),
        fields: vec![
            field("name", FieldType::Text, true, &[]),
            field("email", FieldType::Email, true, &[]),
            field(
                "product",
                FieldType::Dropdown,
                true,
                &["Basic", "Pro", "Enterprise"],
            ),
            field("problem", FieldType::Textarea, true, &[]),
            field("seats", FieldType::Number, false, &[]),
            field(
                "priority",
                FieldType::Dropdown,
                false,
                &["low", "normal", "high", "urgent"],
            ),
        ],
        title_field: None,
        tags: Vec::new(),
    }
}

/// A submission [`support_form`] takes, from an email that matches Acme
/// (in another case).
pub fn good_submission() -> Value {
    json!({
        "name": "Bea Buyer",
        "email": "Buyer@Acme.test",
        "product": "Pro",
        "problem": "The export button does nothing.",
        "seats": 12,
        "priority": "high",
    })
}

/// Form limits with a burst no test reaches.
pub fn generous() -> FormLimits {
    FormLimits {
        burst: 10_000,
        ..FormLimits::default()
    }
}
