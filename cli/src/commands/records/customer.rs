//! `rapport customer`: add, list, show, set and touch customer records.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use rapport_client::index::IndexEntry;
use rapport_model::{Customer, Date, Relationship, Stage};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde_json::{Value, json};

use super::view::{self, Shown, or_empty};
use super::{edits, input, lookup};
use crate::context::{Context, records_of_kind};

const ADD_EXAMPLES: &str = "Examples:
  rapport customer add Acme --kind client --email buyer@acme.test
  rapport customer add \"Bolt GmbH\" --kind customer --contact \"Jo Park\" --stage prospect --score 40
  rapport customer add Acme --kind client --rep me --tag retainer --tag emea --field industry=retail";

const LIST_EXAMPLES: &str = "Examples:
  rapport customer list
  rapport customer list --stage proposal --rep me
  rapport customer list --kind client --tag retainer
  rapport customer list --not-contacted-days 30     # never, or more than 30 days ago
  rapport --json customer list";

const SET_EXAMPLES: &str = "Examples:
  rapport customer set 7Xk2 stage=won score=90
  rapport customer set 7Xk2 contact=\"Jo Park\" email=jo@bolt.test
  rapport customer set 7Xk2 rep=me acquired=2025-03-01 tags=retainer,emea
  rapport customer set 7Xk2 field.industry=retail   # a custom field
  rapport customer set 7Xk2 field.industry=         # removes it

Fields: name, contact, email, stage, score, rep, kind, acquired, last_contact,
tags (comma-separated) and field.NAME for custom fields. An empty value
clears a field. Stages: lead, prospect, proposal, won, lost, active, churned.";

const GROUP_EXAMPLES: &str = "Examples:
  rapport customer add Acme --kind client --email buyer@acme.test
  rapport customer list --stage proposal --rep me
  rapport customer show 7Xk2
  rapport customer set 7Xk2 stage=won score=90
  rapport customer touch 7Xk2

IDs accept any unique prefix; `rapport customer COMMAND --help` says more.";

/// Customer records: clients (long-term, retainer) and customers
/// (transactional).
#[derive(Debug, Subcommand)]
#[command(after_help = GROUP_EXAMPLES)]
pub(crate) enum CustomerCommand {
    /// Add a customer record and print its id.
    #[command(after_help = ADD_EXAMPLES)]
    Add(AddArgs),
    /// List customers, optionally filtered.
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Show every field of one customer.
    #[command(
        after_help = "Examples:\n  rapport customer show 7Xk2\n  rapport --json customer show 7Xk2"
    )]
    Show {
        /// The customer's id, or any unique prefix of it.
        id: String,
    },
    /// Archive a customer: kept, with its history and comments, but left
    /// out of lists and the dashboard (`list --archived` shows it).
    #[command(after_help = "Example:\n  rapport customer archive 7Xk2")]
    Archive {
        /// The customer's id, or any unique prefix of it.
        id: String,
    },
    /// Bring an archived customer back.
    #[command(after_help = "Example:\n  rapport customer unarchive 7Xk2")]
    Unarchive {
        /// The customer's id, or any unique prefix of it.
        id: String,
    },
    /// Delete a customer for good (admins), with its comments: the relay
    /// refuses it from then on and replicas drop it on their next sync.
    /// Lists what will go and asks first; `archive` only hides it.
    #[command(
        after_help = "Examples:\n  rapport customer delete 7Xk2\n  rapport customer delete 7Xk2 --yes"
    )]
    Delete {
        /// The customer's id, or any unique prefix of it.
        id: String,
        /// Do not ask: the list is printed and the deletion goes ahead.
        #[arg(long)]
        yes: bool,
    },
    /// Erase a customer's personal data (admins): the customer, the tasks
    /// and docs about it, and their comments, from the relay (its file is
    /// compacted after) and from every replica of rapport that syncs. Lists
    /// what will go and asks first.
    #[command(
        after_help = "Examples:\n  rapport customer erase 7Xk2\n  rapport customer erase 7Xk2 --yes\n\nA copy made outside rapport (an export, a screenshot, a stock automerge\nclient) cannot be reached; the audit log keeps that an erasure happened,\nnot whose."
    )]
    Erase {
        /// The customer's id, or any unique prefix of it.
        id: String,
        /// Do not ask: the list is printed and the erasure goes ahead.
        #[arg(long)]
        yes: bool,
    },
    /// Add customers from a CSV file (a spreadsheet's or another CRM's
    /// export); a row whose email matches a customer updates it.
    #[command(
        after_help = "Examples:\n  rapport customer import contacts.csv --dry-run\n  rapport customer import contacts.csv --map \"Firma=name,E-Mail=email\" --date-format %d.%m.%Y\n  rapport customer import crm.csv --key \"Customer no\" --skip-bad"
    )]
    Import(super::csv::ImportArgs),
    /// Write every customer as CSV (to stdout, or --to FILE).
    #[command(
        after_help = "Examples:\n  rapport customer export --csv > customers.csv\n  rapport customer export --csv --to customers.csv"
    )]
    Export {
        /// CSV, the one format there is.
        #[arg(long, required = true)]
        csv: bool,
        /// The file to write.
        #[arg(long)]
        to: Option<std::path::PathBuf>,
    },
    /// Change fields of a customer: KEY=VALUE ...
    #[command(after_help = SET_EXAMPLES)]
    Set {
        /// The customer's id, or any unique prefix of it.
        id: String,
        /// The changes, as KEY=VALUE.
        #[arg(required = true, value_name = "KEY=VALUE")]
        changes: Vec<String>,
    },
    /// Record a contact today (sets last_contact to today's UTC date).
    #[command(after_help = "Example:\n  rapport customer touch 7Xk2")]
    Touch {
        /// The customer's id, or any unique prefix of it.
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The organisation's or person's name.
    name: String,
    /// `client` (long-term, retainer, dedicated manager) or `customer`
    /// (transactional).
    #[arg(long, value_name = "client|customer")]
    kind: String,
    /// The contact person or decision maker.
    #[arg(long, value_name = "NAME")]
    contact: Option<String>,
    /// Where to write to.
    #[arg(long, value_name = "ADDR")]
    email: Option<String>,
    /// lead (the default), prospect, proposal, won, lost, active or churned.
    #[arg(long)]
    stage: Option<String>,
    /// Lead score: higher is warmer.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    score: Option<String>,
    /// The owning sales rep: a public key, or `me`.
    #[arg(long, value_name = "KEY|me")]
    rep: Option<String>,
    /// When they became a customer, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    acquired: Option<String>,
    /// A label; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// A custom field; repeat for more.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only archived customers (lists leave them out otherwise).
    #[arg(long)]
    archived: bool,
    /// Only customers in this lifecycle stage.
    #[arg(long)]
    stage: Option<String>,
    /// Only clients or only customers.
    #[arg(long, value_name = "client|customer")]
    kind: Option<String>,
    /// Only customers of this rep: a public key, or `me`.
    #[arg(long, value_name = "KEY|me")]
    rep: Option<String>,
    /// Only customers with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only customers never contacted, or last contacted more than N days ago.
    #[arg(long, value_name = "N")]
    not_contacted_days: Option<String>,
}

pub(crate) fn run(ctx: &Context, command: CustomerCommand) -> Result<()> {
    let shown = match command {
        CustomerCommand::Add(args) => add(ctx, &args)?,
        CustomerCommand::Import(args) => super::csv::import::<rapport_model::Customer>(ctx, &args)?,
        CustomerCommand::Archive { id } => super::archive(ctx, lookup::customer, &id, true)?,
        CustomerCommand::Unarchive { id } => super::archive(ctx, lookup::customer, &id, false)?,
        CustomerCommand::Delete { id, yes } => {
            super::removal::delete(ctx, lookup::customer, &id, yes)?
        }
        CustomerCommand::Erase { id, yes } => super::removal::erase(ctx, &id, yes)?,
        CustomerCommand::Export { csv: _, to } => super::csv::export(ctx, to.as_deref())?,
        CustomerCommand::List(args) => list(ctx, &args)?,
        CustomerCommand::Show { id } => show(ctx, &id)?,
        CustomerCommand::Set { id, changes } => set(ctx, &id, &changes)?,
        CustomerCommand::Touch { id } => set(
            ctx,
            &id,
            &[format!("last_contact={}", crate::context::today()?)],
        )?,
    };
    ctx.print(shown.human, shown.json);
    Ok(())
}

fn add(ctx: &Context, args: &AddArgs) -> Result<Shown> {
    let id = {
        let repo = ctx.repo()?;
        let customer = args.customer(&repo.public_key())?;
        repo.create(|tx| customer.write(tx))?.0
    };
    ctx.created(id, None)?;
    Ok(Shown::new(
        format!("added customer {id}"),
        json!({ "id": id.to_string() }),
    ))
}

impl AddArgs {
    fn customer(&self, me: &PublicKey) -> Result<Customer> {
        let relationship = input::choose(&self.kind, Relationship::KNOWN, "kind")?;
        let mut customer = Customer::new(input::required(&self.name, "name")?, relationship);
        customer.contact = self.contact.clone().unwrap_or_default();
        customer.email = self.email.clone().unwrap_or_default();
        if let Some(stage) = &self.stage {
            customer.stage = input::choose(stage, Stage::KNOWN, "stage")?;
        }
        if let Some(score) = &self.score {
            customer.score = input::number(score, "score")?;
        }
        customer.rep = self
            .rep
            .as_deref()
            .map(|rep| input::person(rep, me))
            .transpose()?;
        customer.acquired = self
            .acquired
            .as_deref()
            .map(|date| input::date(date, "--acquired"))
            .transpose()?;
        customer.tags = self.tags.clone();
        customer.fields = input::custom_fields(&self.fields)?.into_iter().collect();
        Ok(customer)
    }
}

/// Which customers a list keeps, read from the index.
#[derive(Debug, Default)]
struct Filter {
    stage: Option<Stage>,
    relationship: Option<Relationship>,
    rep: Option<String>,
    tag: Option<String>,
    /// Keep customers last contacted on or before this day number.
    contacted_by: Option<i64>,
}

impl ListArgs {
    fn filter(&self, me: &PublicKey) -> Result<Filter> {
        let days = self
            .not_contacted_days
            .as_deref()
            .map(|n| input::number(n, "--not-contacted-days"))
            .transpose()?;
        if days.is_some_and(|days| days < 0) {
            bail!("--not-contacted-days must be 0 or more, e.g. --not-contacted-days 30");
        }
        let today = crate::context::today()?.days_since_epoch();
        Ok(Filter {
            stage: self
                .stage
                .as_deref()
                .map(|s| input::choose(s, Stage::KNOWN, "stage"))
                .transpose()?,
            relationship: self
                .kind
                .as_deref()
                .map(|k| input::choose(k, Relationship::KNOWN, "kind"))
                .transpose()?,
            rep: self
                .rep
                .as_deref()
                .map(|rep| input::person(rep, me))
                .transpose()?,
            tag: self.tag.clone(),
            contacted_by: days.map(|days| today - days - 1),
        })
    }
}

impl Filter {
    fn keeps(&self, entry: &IndexEntry) -> bool {
        let is = |wanted: Option<&str>, found: Option<&String>| {
            wanted.is_none_or(|w| found.is_some_and(|f| f == w))
        };
        let stale = |by: i64| {
            let last = entry
                .last_contact
                .as_deref()
                .and_then(|date| date.parse::<Date>().ok());
            last.is_none_or(|last| last.days_since_epoch() <= by)
        };
        is(self.stage.as_ref().map(Stage::as_str), entry.stage.as_ref())
            && is(
                self.relationship.as_ref().map(Relationship::as_str),
                entry.relationship.as_ref(),
            )
            && is(self.rep.as_deref(), entry.rep.as_ref())
            && self.tag.as_ref().is_none_or(|tag| entry.tags.contains(tag))
            && self.contacted_by.is_none_or(stale)
    }
}

fn list(ctx: &Context, args: &ListArgs) -> Result<Shown> {
    let repo = ctx.repo()?;
    let filter = args.filter(&repo.public_key())?;
    let mut customers: Vec<(DocumentId, Customer)> = records_of_kind(&repo, "customer")?
        .into_iter()
        .filter(|(_, entry)| filter.keeps(entry) && entry.archived == args.archived)
        .filter_map(|(id, _)| {
            lookup::readable(lookup::read_customer(&repo, id)).map(|customer| (id, customer))
        })
        .collect();
    customers.sort_by_key(|(id, customer)| (customer.name.to_lowercase(), id.to_string()));
    let rows: Vec<Vec<String>> = customers.iter().map(|(id, c)| row(*id, c)).collect();
    let human = if rows.is_empty() {
        "no customers match; add one with `rapport customer add NAME --kind client`".to_owned()
    } else {
        view::table(
            &["ID", "NAME", "KIND", "STAGE", "SCORE", "LAST CONTACT"],
            &rows,
        )
    };
    let json: Vec<Value> = customers
        .iter()
        .map(|(id, c)| view::customer_json(*id, c))
        .collect();
    Ok(Shown::new(human, Value::Array(json)))
}

fn row(id: DocumentId, customer: &Customer) -> Vec<String> {
    vec![
        view::short(&id.to_string()),
        customer.name.clone(),
        customer.relationship.to_string(),
        customer.stage.to_string(),
        customer.score.to_string(),
        or_empty(customer.last_contact.as_ref()),
    ]
}

fn show(ctx: &Context, prefix: &str) -> Result<Shown> {
    let repo = ctx.repo()?;
    let id = lookup::customer(&repo, prefix)?;
    let customer = lookup::read_customer(&repo, id)?;
    Ok(Shown::new(
        view::fields(&pairs(id, &customer)),
        view::customer_json(id, &customer),
    ))
}

fn pairs(id: DocumentId, c: &Customer) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = [
        ("id", id.to_string()),
        ("name", c.name.clone()),
        ("kind", c.relationship.to_string()),
        ("contact", c.contact.clone()),
        ("email", c.email.clone()),
        ("stage", c.stage.to_string()),
        ("score", c.score.to_string()),
        ("rep", or_empty(c.rep.as_ref())),
        ("acquired", or_empty(c.acquired.as_ref())),
        ("last_contact", or_empty(c.last_contact.as_ref())),
        ("tags", c.tags.join(", ")),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    pairs.extend(
        c.fields
            .iter()
            .map(|(key, value)| (format!("field.{key}"), value.clone())),
    );
    pairs
}

fn set(ctx: &Context, prefix: &str, changes: &[String]) -> Result<Shown> {
    let repo = ctx.repo()?;
    let id = lookup::customer(&repo, prefix)?;
    let edits = changes
        .iter()
        .map(|change| edits::customer(change, &repo))
        .collect::<Result<Vec<_>>>()?;
    repo.change(id, |tx| {
        Customer::update(tx, |customer| {
            edits.into_iter().for_each(|edit| edit(customer))
        })
    })?;
    let customer = lookup::read_customer(&repo, id)?;
    let human = format!(
        "updated customer {}\n{}",
        view::short(&id.to_string()),
        view::fields(&pairs(id, &customer))
    );
    Ok(Shown::new(human, view::customer_json(id, &customer)))
}

#[cfg(test)]
#[path = "customer_tests.rs"]
mod tests;
