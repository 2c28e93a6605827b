//! `rapport task`: add, list, show, set, check and finish tasks and orders.

use anyhow::Result;
use clap::{Args, Subcommand};
use rapport_client::Repo;
use rapport_client::index::IndexEntry;
use rapport_model::{ChecklistItem, Date, NextOccurrence, Priority, Status, Task};
use rapport_protocol::ids::DocumentId;
use serde_json::{Value, json};

use super::view::{self, Shown, or_empty};
use super::{edits, input, lookup};
use crate::context::{Context, records_of_kind};

const ADD_EXAMPLES: &str = "Examples:
  rapport task add \"Send the offer\" --customer 7Xk2 --due 2025-03-31 --assignee me
  rapport task add \"Monthly report\" --priority high --tag reporting --field product=seo
  rapport task add \"Draft the scope\" --parent 9aQe --assignee 5Hw3…
  rapport task add \"Weekly invoice\" --due 2025-03-03 --repeat weekly
  rapport task add \"Standup notes\" --repeat \"every mon,thu\"

Repeat rules: daily, weekly, monthly, yearly, \"every N days|weeks|months|years\"
(N from 1 to 999), \"every mon,thu\" (any weekdays). When a repeating task is
done, its next occurrence is made: once, however many replicas finish it.";

const LIST_EXAMPLES: &str = "Examples:
  rapport task list
  rapport task list --assignee me --status open
  rapport task list --customer 7Xk2
  rapport task list --overdue          # due before today and not done or cancelled
  rapport --json task list";

const SET_EXAMPLES: &str = "Examples:
  rapport task set 9aQe status=in_progress priority=urgent
  rapport task set 9aQe due=2025-04-15 assignees=me,5Hw3…
  rapport task set 9aQe customer=7Xk2 tags=billing,q2 repeat=monthly
  rapport task set 9aQe field.product=hosting      # a custom field; empty removes it

Fields: title, status, priority, due, repeat, customer, tags and assignees
(comma-separated), and field.NAME for custom fields. An empty value clears a
field. Statuses: open, in_progress, blocked, done, cancelled. Priorities: low,
normal, high, urgent. Repeat rules: as for `task add --repeat`; setting
status=done on a repeating task makes its next occurrence.";

const GROUP_EXAMPLES: &str = "Examples:
  rapport task add \"Send the offer\" --customer 7Xk2 --due 2025-03-31 --assignee me
  rapport task list --assignee me --overdue
  rapport task check 9aQe \"Collect the logo\" --done
  rapport task set 9aQe status=in_progress
  rapport task done 9aQe

IDs accept any unique prefix; `rapport task COMMAND --help` says more.";

/// Tasks and orders.
#[derive(Debug, Subcommand)]
#[command(after_help = GROUP_EXAMPLES)]
pub(crate) enum TaskCommand {
    /// Add a task and print its id.
    #[command(after_help = ADD_EXAMPLES)]
    Add(AddArgs),
    /// List tasks, optionally filtered.
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Add tasks from a CSV file: a `customer` column may name a customer
    /// here; --key COLUMN matches rows to tasks already imported.
    #[command(
        after_help = "Examples:\n  rapport task import todo.csv --dry-run\n  rapport task import jira.csv --map \"Summary=title,Due date=due\" --date-format %d/%m/%Y --key Key"
    )]
    Import(super::csv::ImportArgs),
    /// Archive a task: kept, but left out of lists and the dashboard
    /// (`list --archived` shows it).
    #[command(after_help = "Example:\n  rapport task archive 5Hq")]
    Archive {
        /// The task's id, or any unique prefix of it.
        id: String,
    },
    /// Bring an archived task back.
    #[command(after_help = "Example:\n  rapport task unarchive 5Hq")]
    Unarchive {
        /// The task's id, or any unique prefix of it.
        id: String,
    },
    /// Delete a task for good (admins), with its comments: the relay
    /// refuses it from then on and replicas drop it on their next sync.
    /// Lists what will go and asks first; `archive` only hides it.
    #[command(
        after_help = "Examples:\n  rapport task delete 9aQe\n  rapport task delete 9aQe --yes"
    )]
    Delete {
        /// The task's id, or any unique prefix of it.
        id: String,
        /// Do not ask: the list is printed and the deletion goes ahead.
        #[arg(long)]
        yes: bool,
    },
    /// Show every field of one task, with its checklist.
    #[command(after_help = "Examples:\n  rapport task show 9aQe\n  rapport --json task show 9aQe")]
    Show {
        /// The task's id, or any unique prefix of it.
        id: String,
    },
    /// Change fields of a task: KEY=VALUE ...
    #[command(after_help = SET_EXAMPLES)]
    Set {
        /// The task's id, or any unique prefix of it.
        id: String,
        /// The changes, as KEY=VALUE.
        #[arg(required = true, value_name = "KEY=VALUE")]
        changes: Vec<String>,
    },
    /// Add a checklist item, or tick it off (`--done`) or on again.
    #[command(after_help = "Examples:
  rapport task check 9aQe \"Collect the logo\"          # adds the item
  rapport task check 9aQe \"Collect the logo\" --done   # ticks it off
  rapport task check 9aQe \"Collect the logo\"          # and on again")]
    Check {
        /// The task's id, or any unique prefix of it.
        id: String,
        /// The item's text.
        item: String,
        /// Mark the item done (without it: not done).
        #[arg(long)]
        done: bool,
    },
    /// Mark a task done; a repeating one gets its next occurrence.
    #[command(after_help = "Example:\n  rapport task done 9aQe

A repeating task's next occurrence is due on the rule's next date after this
one's due date (after today if it has none). It is made once: finishing the
task again, or on another replica, makes no second one.")]
    Done {
        /// The task's id, or any unique prefix of it.
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// What is to be done.
    title: String,
    /// The customer it is for: an id or unique prefix.
    #[arg(long, value_name = "ID")]
    customer: Option<String>,
    /// low, normal (the default), high or urgent.
    #[arg(long)]
    priority: Option<String>,
    /// When it is due, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    due: Option<String>,
    /// Who is on it: a public key, or `me`; repeat for more.
    #[arg(long = "assignee", value_name = "KEY|me")]
    assignees: Vec<String>,
    /// A label; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// The task this is a sub-task of: an id or unique prefix.
    #[arg(long, value_name = "ID")]
    parent: Option<String>,
    /// Repeat when done: daily, weekly, monthly, yearly, "every 2 weeks",
    /// "every mon,thu", …
    #[arg(long, value_name = "RULE")]
    repeat: Option<String>,
    /// A custom field; repeat for more.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only archived tasks (lists leave them out otherwise).
    #[arg(long)]
    archived: bool,
    /// Only tasks with this status.
    #[arg(long)]
    status: Option<String>,
    /// Only tasks assigned to this person: a public key, or `me`.
    #[arg(long, value_name = "KEY|me")]
    assignee: Option<String>,
    /// Only tasks for this customer: an id or unique prefix.
    #[arg(long, value_name = "ID")]
    customer: Option<String>,
    /// Only tasks due before today that are not done or cancelled.
    #[arg(long)]
    overdue: bool,
}

pub(crate) fn run(ctx: &Context, command: TaskCommand) -> Result<()> {
    let shown = match command {
        TaskCommand::Add(args) => add(ctx, &args)?,
        TaskCommand::List(args) => list(ctx, &args)?,
        TaskCommand::Import(args) => super::csv::import::<rapport_model::Task>(ctx, &args)?,
        TaskCommand::Archive { id } => super::archive(ctx, lookup::task, &id, true)?,
        TaskCommand::Unarchive { id } => super::archive(ctx, lookup::task, &id, false)?,
        TaskCommand::Delete { id, yes } => super::removal::delete(ctx, lookup::task, &id, yes)?,
        TaskCommand::Show { id } => show(ctx, &id)?,
        TaskCommand::Set { id, changes } => set(ctx, &id, &changes)?,
        TaskCommand::Check { id, item, done } => check(ctx, &id, &item, done)?,
        TaskCommand::Done { id } => done(ctx, &id)?,
    };
    ctx.print(shown.human, shown.json);
    Ok(())
}

fn add(ctx: &Context, args: &AddArgs) -> Result<Shown> {
    let id = {
        let repo = ctx.repo()?;
        let (task, parent) = args.task(&repo)?;
        let (id, ()) = repo.create(|tx| task.write(tx))?;
        if let Some(parent) = parent {
            let child = id.to_string();
            repo.change(parent, |tx| Task::update(tx, |p| p.subtasks.push(child)))?;
        }
        id
    };
    ctx.created(id, None)?;
    Ok(Shown::new(
        format!("added task {id}"),
        json!({ "id": id.to_string() }),
    ))
}

impl AddArgs {
    /// The task, and the parent task it goes under.
    fn task(&self, repo: &Repo) -> Result<(Task, Option<DocumentId>)> {
        let me = repo.public_key();
        let mut task = Task::new(input::required(&self.title, "title")?);
        if let Some(priority) = &self.priority {
            task.priority = input::choose(priority, Priority::KNOWN, "priority")?;
        }
        task.due = self
            .due
            .as_deref()
            .map(|due| input::date(due, "--due"))
            .transpose()?;
        for person in &self.assignees {
            let person = input::person(person, &me)?;
            if !task.assignees.contains(&person) {
                task.assignees.push(person);
            }
        }
        task.tags = self.tags.clone();
        task.repeat = self
            .repeat
            .as_deref()
            .map(|rule| edits::repeat(rule, "--repeat"))
            .transpose()?
            .map(|rule| rule.to_string());
        task.fields = input::custom_fields(&self.fields)?.into_iter().collect();
        if let Some(customer) = &self.customer {
            task.set_customer(&lookup::customer(repo, customer)?);
        }
        let parent = self
            .parent
            .as_deref()
            .map(|parent| lookup::task(repo, parent))
            .transpose()?;
        task.parent = parent.map(|parent| parent.to_string());
        Ok((task, parent))
    }
}

/// Which tasks a list keeps, read from the index.
#[derive(Debug, Default)]
struct Filter {
    status: Option<Status>,
    assignee: Option<String>,
    customer: Option<String>,
    /// Keep unfinished tasks due before this date.
    overdue_on: Option<Date>,
}

impl ListArgs {
    fn filter(&self, repo: &Repo) -> Result<Filter> {
        Ok(Filter {
            status: self
                .status
                .as_deref()
                .map(|s| input::choose(s, Status::KNOWN, "status"))
                .transpose()?,
            assignee: self
                .assignee
                .as_deref()
                .map(|a| input::person(a, &repo.public_key()))
                .transpose()?,
            customer: self
                .customer
                .as_deref()
                .map(|c| lookup::customer(repo, c))
                .transpose()?
                .map(|c| c.to_string()),
            overdue_on: if self.overdue {
                Some(crate::context::today()?)
            } else {
                None
            },
        })
    }
}

impl Filter {
    fn keeps(&self, entry: &IndexEntry) -> bool {
        let status = entry.status.as_deref().unwrap_or("open");
        let overdue = |today: Date| {
            let due = entry
                .due
                .as_deref()
                .and_then(|due| due.parse::<Date>().ok());
            due.is_some_and(|due| due < today) && !matches!(status, "done" | "cancelled")
        };
        self.status
            .as_ref()
            .is_none_or(|wanted| wanted.as_str() == status)
            && self
                .assignee
                .as_ref()
                .is_none_or(|who| entry.assignees.contains(who))
            && self
                .customer
                .as_ref()
                .is_none_or(|customer| entry.customer.as_ref() == Some(customer))
            && self.overdue_on.is_none_or(overdue)
    }
}

fn list(ctx: &Context, args: &ListArgs) -> Result<Shown> {
    let repo = ctx.repo()?;
    let filter = args.filter(&repo)?;
    let mut tasks: Vec<(DocumentId, Task)> = records_of_kind(&repo, "task")?
        .into_iter()
        .filter(|(_, entry)| filter.keeps(entry) && entry.archived == args.archived)
        .filter_map(|(id, _)| lookup::readable(lookup::read_task(&repo, id)).map(|task| (id, task)))
        .collect();
    tasks.sort_by_key(|(id, task)| {
        (
            task.due.is_none(),
            task.due,
            task.title.to_lowercase(),
            id.to_string(),
        )
    });
    let rows: Vec<Vec<String>> = tasks.iter().map(|(id, task)| row(*id, task)).collect();
    let human = if rows.is_empty() {
        "no tasks match; add one with `rapport task add TITLE`".to_owned()
    } else {
        view::table(
            &["ID", "STATUS", "PRIORITY", "DUE", "CHECKLIST", "TITLE"],
            &rows,
        )
    };
    let json: Vec<Value> = tasks
        .iter()
        .map(|(id, task)| view::task_json(*id, task))
        .collect();
    Ok(Shown::new(human, Value::Array(json)))
}

fn row(id: DocumentId, task: &Task) -> Vec<String> {
    let done = task.checklist.iter().filter(|step| step.done).count();
    let checklist = if task.checklist.is_empty() {
        String::new()
    } else {
        format!("{done}/{}", task.checklist.len())
    };
    vec![
        view::short(&id.to_string()),
        task.status.to_string(),
        task.priority.to_string(),
        or_empty(task.due.as_ref()),
        checklist,
        task.title.clone(),
    ]
}

fn show(ctx: &Context, prefix: &str) -> Result<Shown> {
    let repo = ctx.repo()?;
    let id = lookup::task(&repo, prefix)?;
    let task = lookup::read_task(&repo, id)?;
    Ok(Shown::new(describe(id, &task), view::task_json(id, &task)))
}

fn describe(id: DocumentId, task: &Task) -> String {
    let mut pairs: Vec<(String, String)> = [
        ("id", id.to_string()),
        ("title", task.title.clone()),
        ("status", task.status.to_string()),
        ("priority", task.priority.to_string()),
        ("due", or_empty(task.due.as_ref())),
        ("assignees", task.assignees.join(", ")),
        ("tags", task.tags.join(", ")),
        ("customer", or_empty(task.customer.as_ref())),
        ("parent", or_empty(task.parent.as_ref())),
        ("subtasks", task.subtasks.join(", ")),
        ("repeat", or_empty(task.repeat.as_ref())),
        ("previous", or_empty(task.previous.as_ref())),
        ("series", or_empty(task.series.as_ref())),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    pairs.extend(
        task.fields
            .iter()
            .map(|(key, value)| (format!("field.{key}"), value.clone())),
    );
    let mut text = view::fields(&pairs);
    for step in &task.checklist {
        text.push_str(&format!(
            "\n  [{}] {}",
            if step.done { "x" } else { " " },
            step.item
        ));
    }
    text
}

fn set(ctx: &Context, prefix: &str, changes: &[String]) -> Result<Shown> {
    let today = crate::context::today()?;
    let (id, task, next) = {
        let repo = ctx.repo()?;
        let id = lookup::task(&repo, prefix)?;
        let edits = changes
            .iter()
            .map(|change| edits::task(change, &repo))
            .collect::<Result<Vec<_>>>()?;
        let finished = repo.change(id, |tx| {
            Task::update(tx, |task| {
                let was_done = task.status == Status::Done;
                edits.into_iter().for_each(|edit| edit(task));
                !was_done && task.status == Status::Done
            })
        })?;
        let next = if finished {
            repo.ensure_next_occurrence(id, today)?
        } else {
            NextOccurrence::None
        };
        (id, lookup::read_task(&repo, id)?, next)
    };
    let human = format!(
        "updated task {}\n{}",
        view::short(&id.to_string()),
        describe(id, &task)
    );
    next_occurrence(ctx, Shown::new(human, view::task_json(id, &task)), &next)
}

/// `task done`: marks the task done and makes its next occurrence.
fn done(ctx: &Context, prefix: &str) -> Result<Shown> {
    let today = crate::context::today()?;
    let (id, task, next) = {
        let repo = ctx.repo()?;
        let id = lookup::task(&repo, prefix)?;
        let next = repo.finish_task(id, today)?;
        (id, lookup::read_task(&repo, id)?, next)
    };
    let human = format!("done: task {}", view::short(&id.to_string()));
    next_occurrence(ctx, Shown::new(human, view::task_json(id, &task)), &next)
}

/// Adds what became of the next occurrence to `shown` (a line, and `next`
/// in the JSON), and notes a new one for the workspace.
fn next_occurrence(ctx: &Context, mut shown: Shown, next: &NextOccurrence) -> Result<Shown> {
    let line = match next {
        NextOccurrence::Next { id, due, created } => {
            if *created {
                ctx.created(*id, None)?;
            }
            shown.json["next"] = json!({
                "id": id.to_string(),
                "due": due.map(|due| due.to_string()),
                "created": created,
            });
            let verb = if *created { "added" } else { "already there:" };
            format!(
                "next occurrence {verb} {} due {}",
                view::short(&id.to_string()),
                or_empty(due.as_ref())
            )
        }
        NextOccurrence::BadRule(error) => {
            shown.json["next"] = Value::Null;
            eprintln!("warning: no next occurrence made: {error}");
            return Ok(shown);
        }
        NextOccurrence::None => {
            shown.json["next"] = Value::Null;
            return Ok(shown);
        }
    };
    shown.human = format!("{}\n{line}", shown.human);
    Ok(shown)
}

fn check(ctx: &Context, prefix: &str, item: &str, done: bool) -> Result<Shown> {
    let item = input::required(item, "checklist item")?;
    let repo = ctx.repo()?;
    let id = lookup::task(&repo, prefix)?;
    let what = repo.change(id, |tx| Task::update(tx, |task| tick(task, &item, done)))?;
    let task = lookup::read_task(&repo, id)?;
    let human = format!(
        "{what} `{item}` on task {}\n{}",
        view::short(&id.to_string()),
        describe(id, &task)
    );
    Ok(Shown::new(human, view::task_json(id, &task)))
}

/// Ticks the item with this text (or clears its tick); adds it if the
/// checklist has none. Says what it did.
fn tick(task: &mut Task, item: &str, done: bool) -> &'static str {
    match task.checklist.iter_mut().find(|step| step.item == item) {
        Some(step) => {
            step.done = done;
            if done { "ticked off" } else { "unticked" }
        }
        None => {
            task.checklist.push(ChecklistItem {
                item: item.to_owned(),
                done,
            });
            "added"
        }
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;
