//! The pages of a public form: the form itself (a plain `<form
//! method="post">`, no JavaScript), the same with the problems of a refused
//! submission, a thank-you page, and a page for each refusal. Every piece
//! of text from a form or a submission is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rapport_model::form::submission::FieldErrors;
use rapport_model::form::{FieldType, Form, MAX_LONG_TEXT, MAX_TEXT};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}\
label{display:block;margin-top:1rem;font-weight:600}\
input,select,textarea{display:block;width:100%;box-sizing:border-box;padding:.4rem;margin-top:.25rem;font:inherit}\
textarea{min-height:8rem}\
button{margin-top:1.5rem;padding:.5rem 1.5rem;font:inherit}\
.error{color:#a00;font-weight:400}\
.summary{border:1px solid #a00;padding:.5rem 1rem;color:#a00}\
.optional{font-weight:400;color:#666}";

/// The form, filled with `values` and annotated with `errors` when a
/// submission was refused.
pub(crate) fn form_page(
    form: &Form,
    values: &BTreeMap<String, String>,
    errors: &FieldErrors,
) -> String {
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1>", escape(&form.title));
    if !form.description.is_empty() {
        for paragraph in form.description.split("\n\n") {
            let _ = write!(body, "<p>{}</p>", escape(paragraph));
        }
    }
    if !errors.is_empty() {
        body.push_str(
            "<div class=\"summary\" role=\"alert\"><p>Please correct the following:</p><ul>",
        );
        for (name, problem) in errors {
            let label = form.field(name).map_or(name.as_str(), |f| f.label.as_str());
            let _ = write!(body, "<li>{} {}</li>", escape(label), escape(problem));
        }
        body.push_str("</ul></div>");
    }
    body.push_str("<form method=\"post\" accept-charset=\"utf-8\">");
    for field in &form.fields {
        let value = values.get(&field.name).map_or("", String::as_str);
        let id = format!("f-{}", field.name);
        let _ = write!(
            body,
            "<label for=\"{id}\">{}{}",
            escape(&field.label),
            if field.required {
                ""
            } else {
                " <span class=\"optional\">(optional)</span>"
            }
        );
        if let Some(problem) = errors.get(&field.name) {
            let _ = write!(body, " <span class=\"error\">{}</span>", escape(problem));
        }
        body.push_str("</label>");
        let required = if field.required { " required" } else { "" };
        let name = escape(&field.name);
        match field.kind {
            FieldType::Text | FieldType::Email | FieldType::Number => {
                let (kind, extra) = match field.kind {
                    FieldType::Email => ("email", " maxlength=\"254\"".to_owned()),
                    FieldType::Number => ("number", " step=\"any\"".to_owned()),
                    _ => ("text", format!(" maxlength=\"{MAX_TEXT}\"")),
                };
                let _ = write!(
                    body,
                    "<input type=\"{kind}\" id=\"{id}\" name=\"{name}\" value=\"{}\"{extra}{required}>",
                    escape(value)
                );
            }
            FieldType::Textarea => {
                let _ = write!(
                    body,
                    "<textarea id=\"{id}\" name=\"{name}\" maxlength=\"{MAX_LONG_TEXT}\"{required}>{}</textarea>",
                    escape(value)
                );
            }
            FieldType::Dropdown => {
                let _ = write!(body, "<select id=\"{id}\" name=\"{name}\"{required}>");
                let _ = write!(
                    body,
                    "<option value=\"\"{}>Choose…</option>",
                    if value.is_empty() { " selected" } else { "" }
                );
                for choice in &field.choices {
                    let selected = if choice == value { " selected" } else { "" };
                    let _ = write!(
                        body,
                        "<option value=\"{0}\"{selected}>{0}</option>",
                        escape(choice)
                    );
                }
                body.push_str("</select>");
            }
        }
    }
    body.push_str("<button type=\"submit\">Send</button></form>");
    page(&form.title, &body)
}

/// After a submission went through.
pub(crate) fn thanks(form: &Form) -> String {
    page(
        &form.title,
        &format!(
            "<h1>{}</h1><p>Thank you: we received your request and will get back to you.</p>",
            escape(&form.title)
        ),
    )
}

/// A refusal: a heading and a sentence.
pub(crate) fn message(heading: &str, text: &str) -> String {
    page(
        heading,
        &format!("<h1>{}</h1><p>{}</p>", escape(heading), escape(text)),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// Text made safe inside HTML elements and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_model::form::FormField as Field;

    #[test]
    fn everything_from_the_form_and_the_submission_is_escaped() {
        let form = Form {
            id: "form-1".into(),
            workspace: "ws".into(),
            name: "x".into(),
            title: "<script>alert(1)</script>".into(),
            description: "a & b".into(),
            fields: vec![
                Field {
                    name: "plan".into(),
                    label: "Plan \"A\"".into(),
                    kind: FieldType::Dropdown,
                    required: true,
                    choices: vec!["<b>".into()],
                },
                Field {
                    name: "note".into(),
                    label: "Note".into(),
                    kind: FieldType::Textarea,
                    required: false,
                    choices: vec![],
                },
            ],
            title_field: None,
            tags: Vec::new(),
            created_by: rapport_protocol::ids::PublicKey::from_bytes([1; 32]),
            created_at: 0,
            closed_at: None,
            submissions: 0,
        };
        let values = BTreeMap::from([("note".to_owned(), "</textarea><script>".to_owned())]);
        let errors = FieldErrors::from([("plan".to_owned(), "is <required>".to_owned())]);
        let html = form_page(&form, &values, &errors);
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;/textarea&gt;&lt;script&gt;"));
        assert!(html.contains("<form method=\"post\""));
        assert!(html.contains("is &lt;required&gt;"));
        assert!(html.contains("(optional)"));
        assert!(!html.to_lowercase().contains("javascript"));
    }
}
