//! `rapport dashboard`: the figures of `rapport_client::dashboard`, from
//! this replica's index, offline.

use anyhow::{Context as _, Result, anyhow};
use clap::Args;
use rapport_client::dashboard::{self, Dashboard, Options};
use serde_json::Value;

use super::history::{People, short_id, table};
use crate::context::Context;

pub(crate) const EXAMPLES: &str = "Examples:
  rapport dashboard
  rapport dashboard --stale-days 14
  rapport dashboard --today 2025-03-31 --json

Computed from this replica alone (run `rapport sync` first for the latest).
Open tasks are those not done or cancelled; overdue ones were due before
today (UTC). Customers lost or churned are not listed as not contacted.
CSAT comes from feedback submissions: tasks tagged `feedback` whose custom
field `csat` is 1 to 5 (rapport task add \"Feedback\" --tag feedback --field
csat=4).";

#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// List customers last contacted more than N days ago, or never.
    #[arg(
        long,
        value_name = "N",
        default_value_t = dashboard::DEFAULT_STALE_DAYS.to_string(),
        allow_hyphen_values = true
    )]
    stale_days: String,
    /// Compute as if today were DATE (YYYY-MM-DD); default: today in UTC.
    #[arg(long, value_name = "DATE")]
    today: Option<String>,
}

pub(crate) fn run(ctx: &Context, args: &DashboardArgs) -> Result<()> {
    let options = Options {
        today: match &args.today {
            Some(text) => text.trim().parse().context("--today")?,
            None => crate::context::today()?,
        },
        stale_days: stale_days(&args.stale_days)?,
    };
    let repo = ctx.repo()?;
    let figures = dashboard::compute(&dashboard::index(&repo)?, &options);
    let people = People::new(ctx, &repo)?;
    let mut json = serde_json::to_value(&figures)?;
    if let Some(rows) = json["workload"].as_array_mut() {
        for row in rows {
            let name = row["assignee"]
                .as_str()
                .and_then(|key| key.parse().ok())
                .and_then(|key| people.name(&key).map(str::to_owned));
            row["name"] = name.map_or(Value::Null, Value::from);
        }
    }
    ctx.print(human(&figures, &people), json);
    Ok(())
}

fn stale_days(text: &str) -> Result<u32> {
    text.trim().parse().map_err(|_| {
        anyhow!(
            "--stale-days: `{text}` is not a number of days (0 or more); write e.g. --stale-days 30"
        )
    })
}

fn human(figures: &Dashboard, people: &People) -> String {
    let mut out = format!("Dashboard for {} (this replica)\n", figures.today);

    let rows: Vec<Vec<String>> = figures
        .pipeline
        .iter()
        .map(|s| {
            vec![
                s.stage.clone(),
                s.customers.to_string(),
                s.score.to_string(),
            ]
        })
        .collect();
    out += &format!("\n{}\n", table(&["STAGE", "CUSTOMERS", "SCORE"], &rows));

    let rows: Vec<Vec<String>> = figures
        .workload
        .iter()
        .map(|w| {
            let who = w
                .assignee
                .as_deref()
                .map_or_else(|| "unassigned".to_owned(), |key| people.label(key));
            vec![who, w.open.to_string(), w.overdue.to_string()]
        })
        .collect();
    out += &if rows.is_empty() {
        "\nNo open tasks.\n".to_owned()
    } else {
        format!("\n{}\n", table(&["ASSIGNEE", "OPEN", "OVERDUE"], &rows))
    };

    let rows: Vec<Vec<String>> = figures
        .overdue
        .iter()
        .map(|t| {
            let who: Vec<String> = t.assignees.iter().map(|a| people.label(a)).collect();
            vec![
                short_id(&t.id.to_string()),
                t.due.clone(),
                t.days_overdue.to_string(),
                t.title.clone(),
                who.join(", "),
            ]
        })
        .collect();
    out += &if rows.is_empty() {
        "\nNo overdue tasks.\n".to_owned()
    } else {
        format!(
            "\nOverdue tasks\n{}\n",
            table(&["ID", "DUE", "DAYS", "TITLE", "ASSIGNEES"], &rows)
        )
    };

    let stale = &figures.not_contacted;
    let rows: Vec<Vec<String>> = stale
        .customers
        .iter()
        .map(|c| {
            let last = match (&c.last_contact, c.days_since) {
                (Some(date), Some(days)) => format!("{date} ({days} days)"),
                _ => "never".to_owned(),
            };
            vec![
                short_id(&c.id.to_string()),
                c.name.clone(),
                c.stage.clone(),
                last,
            ]
        })
        .collect();
    out += &if rows.is_empty() {
        format!(
            "\nEvery customer was contacted in the last {} days.\n",
            stale.days
        )
    } else {
        format!(
            "\nNot contacted for more than {} days\n{}\n",
            stale.days,
            table(&["ID", "NAME", "STAGE", "LAST CONTACT"], &rows)
        )
    };

    let csat = &figures.csat;
    out += &match csat.average {
        Some(average) => format!(
            "\nCSAT {average:.2} of 5 from {} feedback submission(s)",
            csat.responses
        ),
        None => "\nCSAT: no scored feedback yet".to_owned(),
    };
    if csat.unscored > 0 {
        out += &format!(" ({} without a score 1-5)", csat.unscored);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_days_are_whole_and_not_negative() {
        assert_eq!(stale_days(" 14 ").ok(), Some(14));
        for bad in ["-1", "two", "", "1.5"] {
            let error = stale_days(bad).map_err(|e| e.to_string());
            assert!(
                error.as_ref().is_err_and(|e| e.contains("--stale-days")),
                "{bad}: {error:?}"
            );
        }
    }
}
