//! `rapport doc`: requirements documents, written together.
//!
//! The body is rich text (blocks and marks, as the web app's editor keeps
//! it); here it is shown and edited as Markdown lines
//! (`rapport_model::markdown`): `## ` headings, `- ` and `1. ` list items,
//! `**bold**`, `_emphasis_`, `[links](…)`.
//!
//! `doc edit` never replaces the body: it takes the difference between the
//! text it handed to the editor and the text that came back (see `diff`),
//! and the model writes only what differs, so edits other people made
//! elsewhere in the body survive the merge. The replica is closed while the
//! editor runs, so a `rapport sync` meanwhile is fine: if the body changed
//! in the meantime, the edits are moved past those changes, and if both
//! touched the same place the edited text is kept in its file and nothing
//! is written.

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use rapport_model::{Requirements, Template};
use rapport_protocol::ids::DocumentId;
use serde_json::{Value, json};

use super::diff;
use super::editor::{self, Draft};
use super::view::{self, Shown, or_empty};
use super::{input, lookup};
use crate::context::{Context, records_of_kind};

const NEW_EXAMPLES: &str = "Examples:
  rapport doc new \"Buyer portal\" --customer 7Xk2 --template brd
  rapport doc new \"Meeting notes\"

The brd template starts the body with sections for scope, business drivers,
financial details, and timeline and deadlines.";

const EDIT_EXAMPLES: &str = "Examples:
  rapport doc edit 4fRt
  EDITOR=\"code --wait\" rapport doc edit 4fRt

Opens $EDITOR (or $VISUAL) on the body. Only what you changed is written, so
edits others made elsewhere in the document survive.";

const APPEND_EXAMPLES: &str = "Examples:
  rapport doc append 4fRt \"Launch before the Q3 trade fair.\"
  rapport doc append 4fRt \"$(cat notes.md)\"";

const GROUP_EXAMPLES: &str = "Examples:
  rapport doc new \"Buyer portal\" --customer 7Xk2 --template brd
  rapport doc edit 4fRt
  rapport doc append 4fRt \"Launch before the Q3 trade fair.\"
  rapport doc show 4fRt

IDs accept any unique prefix; `rapport doc COMMAND --help` says more.";

/// Requirements documents: a title and a rich-text body.
#[derive(Debug, Subcommand)]
#[command(after_help = GROUP_EXAMPLES)]
pub(crate) enum DocCommand {
    /// Start a requirements document and print its id.
    #[command(after_help = NEW_EXAMPLES)]
    New {
        /// The document's title.
        title: String,
        /// The customer it is for: an id or unique prefix.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
        /// Start the body from a template: brd.
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
    },
    /// List requirements documents.
    #[command(
        after_help = "Examples:\n  rapport doc list\n  rapport --json doc list\n  rapport doc list --archived"
    )]
    List {
        /// Only archived documents (lists leave them out otherwise).
        #[arg(long)]
        archived: bool,
    },
    /// Archive a document: kept, with its comments, but left out of lists.
    #[command(after_help = "Example:\n  rapport doc archive 4fRt")]
    Archive {
        /// The document's id, or any unique prefix of it.
        id: String,
    },
    /// Bring an archived document back.
    #[command(after_help = "Example:\n  rapport doc unarchive 4fRt")]
    Unarchive {
        /// The document's id, or any unique prefix of it.
        id: String,
    },
    /// Delete a document for good (admins), with its comments: the relay
    /// refuses it from then on and replicas drop it on their next sync.
    /// Lists what will go and asks first; `archive` only hides it.
    #[command(after_help = "Examples:\n  rapport doc delete 4fRt\n  rapport doc delete 4fRt --yes")]
    Delete {
        /// The document's id, or any unique prefix of it.
        id: String,
        /// Do not ask: the list is printed and the deletion goes ahead.
        #[arg(long)]
        yes: bool,
    },
    /// Show a document's title, customer and body.
    #[command(after_help = "Examples:\n  rapport doc show 4fRt\n  rapport --json doc show 4fRt")]
    Show {
        /// The document's id, or any unique prefix of it.
        id: String,
    },
    /// Edit the body in your editor.
    #[command(after_help = EDIT_EXAMPLES)]
    Edit {
        /// The document's id, or any unique prefix of it.
        id: String,
    },
    /// Add a paragraph at the end of the body.
    #[command(after_help = APPEND_EXAMPLES)]
    Append {
        /// The document's id, or any unique prefix of it.
        id: String,
        /// The text to add.
        text: String,
    },
}

pub(crate) fn run(ctx: &Context, command: DocCommand) -> Result<()> {
    let shown = match command {
        DocCommand::New {
            title,
            customer,
            template,
        } => new(ctx, &title, customer.as_deref(), template.as_deref())?,
        DocCommand::List { archived } => list(ctx, archived)?,
        DocCommand::Archive { id } => super::archive(ctx, lookup::doc, &id, true)?,
        DocCommand::Unarchive { id } => super::archive(ctx, lookup::doc, &id, false)?,
        DocCommand::Delete { id, yes } => super::removal::delete(ctx, lookup::doc, &id, yes)?,
        DocCommand::Show { id } => show(ctx, &id)?,
        DocCommand::Edit { id } => edit(ctx, &id, &editor::command()?)?,
        DocCommand::Append { id, text } => append(ctx, &id, &text)?,
    };
    ctx.print(shown.human, shown.json);
    Ok(())
}

fn new(
    ctx: &Context,
    title: &str,
    customer: Option<&str>,
    template: Option<&str>,
) -> Result<Shown> {
    let title = input::required(title, "title")?;
    let template = template
        .map(|name| name.parse::<Template>())
        .transpose()
        .map_err(|error| {
            anyhow!("{error}: use --template brd, or leave it out for an empty body")
        })?;
    let id = {
        let repo = ctx.repo()?;
        let mut doc = Requirements::new(title, "");
        if let Some(customer) = customer {
            doc.set_customer(&lookup::customer(&repo, customer)?);
        }
        let body = template.map(Template::body).unwrap_or_default();
        repo.create(|tx| {
            doc.write(tx)?;
            Requirements::set_body_markdown(tx, &body)
        })?
        .0
    };
    ctx.created(id, None)?;
    Ok(Shown::new(
        format!("added doc {id}"),
        json!({ "id": id.to_string() }),
    ))
}

fn list(ctx: &Context, archived: bool) -> Result<Shown> {
    let repo = ctx.repo()?;
    let mut docs = records_of_kind(&repo, "requirements")?;
    docs.retain(|(_, entry)| entry.archived == archived);
    docs.sort_by_key(|(id, entry)| (entry.title.to_lowercase(), id.to_string()));
    let rows: Vec<Vec<String>> = docs
        .iter()
        .map(|(id, entry)| {
            let customer = entry
                .customer
                .as_deref()
                .map(view::short)
                .unwrap_or_default();
            vec![view::short(&id.to_string()), customer, entry.title.clone()]
        })
        .collect();
    let human = if rows.is_empty() {
        "no docs yet; start one with `rapport doc new TITLE --template brd`".to_owned()
    } else {
        view::table(&["ID", "CUSTOMER", "TITLE"], &rows)
    };
    let json = docs
        .iter()
        .map(|(id, entry)| json!({ "id": id.to_string(), "title": entry.title, "customer": entry.customer }))
        .collect();
    Ok(Shown::new(human, Value::Array(json)))
}

fn show(ctx: &Context, prefix: &str) -> Result<Shown> {
    let repo = ctx.repo()?;
    let id = lookup::doc(&repo, prefix)?;
    let (doc, body) = lookup::read_doc_body(&repo, id)?;
    Ok(Shown::new(
        describe(id, &doc, &body),
        view::doc_json(id, &doc, &body),
    ))
}

fn describe(id: DocumentId, doc: &Requirements, body: &str) -> String {
    let pairs = [
        ("id".to_owned(), id.to_string()),
        ("title".to_owned(), doc.title.clone()),
        ("customer".to_owned(), or_empty(doc.customer.as_ref())),
    ];
    format!("{}\n\n{body}", view::fields(&pairs))
}

fn append(ctx: &Context, prefix: &str, text: &str) -> Result<Shown> {
    if text.trim().is_empty() {
        bail!("nothing to append: give the text, e.g. rapport doc append ID \"Launch in Q3.\"");
    }
    let repo = ctx.repo()?;
    let id = lookup::doc(&repo, prefix)?;
    repo.change(id, |tx| {
        let body = Requirements::body_markdown(tx)?;
        Requirements::set_body_markdown(tx, &paragraph(&body, text))
    })?;
    let (doc, body) = lookup::read_doc_body(&repo, id)?;
    Ok(Shown::new(
        format!("appended to doc {}", view::short(&id.to_string())),
        view::doc_json(id, &doc, &body),
    ))
}

/// `body` with `text` as new paragraphs (lines) at its end; an empty
/// last line is filled rather than followed.
fn paragraph(body: &str, text: &str) -> String {
    let text = text.trim_end_matches('\n');
    match body.strip_suffix('\n') {
        _ if body.is_empty() => text.to_owned(),
        Some(open) => format!("{open}\n{text}"),
        None => format!("{body}\n{text}"),
    }
}

fn edit(ctx: &Context, prefix: &str, editor: &str) -> Result<Shown> {
    let (id, original) = {
        let repo = ctx.repo()?;
        let id = lookup::doc(&repo, prefix)?;
        (id, lookup::read_doc_body(&repo, id)?.1)
    };
    let draft = Draft::write(&original)?;
    editor::run(editor, draft.path())?;
    let edited = editor::settle(&original, draft.read()?);
    finish(ctx, id, &original, &edited, draft)
}

/// Writes the difference between `original` and `edited` into the body of
/// `id`, moved past any change made to the body since `original` was read.
fn finish(
    ctx: &Context,
    id: DocumentId,
    original: &str,
    edited: &str,
    draft: Draft,
) -> Result<Shown> {
    let mine = diff::splices(original, edited);
    let repo = ctx.repo()?;
    if !mine.is_empty() {
        let current = lookup::read_doc_body(&repo, id)?.1;
        let Some(splices) = diff::rebase(&mine, &diff::splices(original, &current)) else {
            let kept = draft.keep();
            bail!(
                "the body changed where you edited it while the editor was open; nothing was written, your text is in {} (run `rapport doc edit` again)",
                kept.display()
            );
        };
        let body = diff::apply(&current, &splices);
        repo.change(id, |tx| Requirements::set_body_markdown(tx, &body))?;
    }
    let (doc, body) = lookup::read_doc_body(&repo, id)?;
    let short = view::short(&id.to_string());
    let human = if mine.is_empty() {
        format!("no change to doc {short}")
    } else {
        format!("updated doc {short}")
    };
    Ok(Shown::new(human, view::doc_json(id, &doc, &body)))
}

#[cfg(test)]
#[path = "doc_tests.rs"]
mod tests;
