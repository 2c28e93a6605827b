//! Intake forms: define, list and close them, and print their public URL.
//! Calls to the relay's form API; each submission becomes a task that the
//! next `rapport sync` brings in.

use anyhow::Result;
use clap::Subcommand;
use rapport_client::api::{FormField, FormInfo, NewForm, RelayApi};
use serde_json::{Value, json};

use crate::context::Context;

pub(crate) const CREATE_EXAMPLES: &str = "Examples:
  rapport form create support --title \"Support request\" \\
      --field name --field email:email --field 'product:dropdown:Basic,Pro,Enterprise' \\
      --field problem:textarea --field 'priority?:dropdown:low,normal,high,urgent' \\
      --title-field problem

A field is NAME[?][:TYPE[:CHOICE,CHOICE…]]: required unless NAME ends in ?,
TYPE is text (the default), textarea, email, number or dropdown. Each
submission becomes a task tagged form:NAME, linked to the customer whose
email matches the first email field.

A satisfaction survey that feeds `rapport dashboard`:
  rapport form create feedback --tag feedback --field 'csat:dropdown:1,2,3,4,5' --field comment?:textarea";

#[derive(Debug, Subcommand)]
pub(crate) enum FormCommand {
    /// Define an intake form and print its public URL (admins).
    #[command(after_help = CREATE_EXAMPLES)]
    Create {
        /// A short name (lowercase, digits, - and _): tasks are tagged form:NAME.
        name: String,
        /// The page's heading (default: the name).
        #[arg(long)]
        title: Option<String>,
        /// A paragraph above the fields.
        #[arg(long)]
        description: Option<String>,
        /// A field, in order: NAME[?][:TYPE[:CHOICE,CHOICE…]] (repeat).
        #[arg(long = "field", required = true, value_parser = parse_field)]
        fields: Vec<FormField>,
        /// The field whose value becomes the task title (default:
        /// "TITLE: <name field>").
        #[arg(long)]
        title_field: Option<String>,
        /// Another tag for each task (repeat); `feedback` with a `csat`
        /// field feeds the dashboard's satisfaction score.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// The workspace's forms, open and closed (admins).
    #[command(after_help = "Example:\n  rapport form list --json")]
    List,
    /// Close a form: its page says so and submissions are refused (admins).
    #[command(after_help = "Example:\n  rapport form close support")]
    Close {
        /// The form's id, a unique prefix of it, or its name.
        form: String,
    },
    /// Print where people fill in a form.
    #[command(after_help = "Example:\n  rapport form show-url support")]
    ShowUrl {
        /// The form's id, a unique prefix of it, or its name.
        form: String,
    },
}

fn parse_field(spec: &str) -> Result<FormField, String> {
    spec.parse()
}

pub(crate) fn run(ctx: &Context, command: FormCommand) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    let ws = workspace.id.as_str();
    match command {
        FormCommand::Create {
            name,
            title,
            description,
            fields,
            title_field,
            tags,
        } => {
            let form = api.create_form(
                ws,
                &NewForm {
                    name,
                    title,
                    description,
                    fields,
                    title_field,
                    tags,
                },
            )?;
            let url = api.form_url(&form);
            ctx.print(
                format!(
                    "created form {} ({}) with {} fields\n{url}",
                    form.name,
                    form.id,
                    form.fields.len()
                ),
                described(&api, &form),
            );
        }
        FormCommand::List => {
            let forms = api.forms(ws)?;
            let mut human = String::new();
            for form in &forms {
                human.push_str(&format!(
                    "{:<24} {:<20} {:<6} {:>5} submissions  {}\n",
                    form.id,
                    form.name,
                    if form.open { "open" } else { "closed" },
                    form.submissions,
                    api.form_url(form)
                ));
            }
            if human.is_empty() {
                human = "no forms yet: rapport form create NAME --field …".into();
            }
            let list: Vec<Value> = forms.iter().map(|f| described(&api, f)).collect();
            ctx.print(human, Value::Array(list));
        }
        FormCommand::Close { form } => {
            let found = api.find_form(ws, &form)?;
            let closed = api.close_form(ws, &found.id)?;
            ctx.print(
                format!(
                    "closed form {} ({}) after {} submissions; its page now says so",
                    closed.name, closed.id, closed.submissions
                ),
                described(&api, &closed),
            );
        }
        FormCommand::ShowUrl { form } => {
            let form = api.find_form(ws, &form)?;
            let url = api.form_url(&form);
            let human = if form.open {
                url.clone()
            } else {
                format!("{url}  (closed)")
            };
            ctx.print(
                human,
                json!({
                    "id": form.id,
                    "name": form.name,
                    "open": form.open,
                    "url": url,
                    "json_url": format!("{url}.json"),
                }),
            );
        }
    }
    Ok(())
}

/// A form with its URLs, for `--json`.
fn described(api: &RelayApi, form: &FormInfo) -> Value {
    let mut value = serde_json::to_value(form).unwrap_or_default();
    let url = api.form_url(form);
    if let Some(map) = value.as_object_mut() {
        map.insert("json_url".into(), format!("{url}.json").into());
        map.insert("url".into(), url.into());
    }
    value
}
