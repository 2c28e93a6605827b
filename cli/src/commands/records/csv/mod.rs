//! Customers and tasks from CSV, and customers to it, the way
//! spreadsheets and other CRMs write it: `rapport customer import FILE.csv`,
//! `rapport task import FILE.csv` and `rapport customer export --csv`.
//!
//! Columns are matched to fields by header (`Company` is `name`, `E-Mail`
//! is `email`, …; `--map "Header=field"` says otherwise), and a column that
//! matches no field becomes a custom field. A file is read whole and
//! checked row by row before anything is written: every row that cannot
//! become a customer is named with its row (as a spreadsheet numbers them,
//! the header being row 1) and the reason, and nothing is
//! written unless every row passes (`--skip-bad` writes the others). A
//! row whose email (or `--key` column) matches a customer already here
//! updates that customer instead of adding another, so importing a file
//! twice adds nothing the second time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use rapport_model::Customer;

pub(crate) use kinds::Importable;
use rapport_protocol::ids::DocumentId;
use serde_json::json;

mod kinds;

use super::view::Shown;
use crate::context::{Context, records_of_kind};

/// `rapport customer import`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The CSV file (comma, semicolon or tab separated; UTF-8, with or
    /// without a byte-order mark).
    file: PathBuf,
    /// Which column is which field, where the header does not say:
    /// "Company=name,E-Mail=email,Customer no=field.number".
    #[arg(long, value_name = "HEADER=FIELD,...")]
    map: Option<String>,
    /// How dates in the file are written, when not YYYY-MM-DD: %d, %m and
    /// %Y with the separators between them ("%d.%m.%Y", "%m/%d/%Y").
    #[arg(long, value_name = "FORMAT")]
    date_format: Option<String>,
    /// The column that says which record a row is, for a re-import
    /// (default for customers: the email column; tasks match only on it).
    #[arg(long, value_name = "HEADER")]
    key: Option<String>,
    /// Print what would be added and updated, and every refused row;
    /// write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the rows that pass even when others are refused.
    #[arg(long)]
    skip_bad: bool,
}

/// What one row becomes.
#[derive(Debug)]
enum Plan<R> {
    Add(R),
    Update {
        id: DocumentId,
        name: String,
        changes: Vec<(String, String)>,
    },
}

pub(super) fn import<R: Importable + std::fmt::Debug>(
    ctx: &Context,
    args: &ImportArgs,
) -> Result<Shown> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is not UTF-8 text", args.file.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter(text))
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("the file has no header row")?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let fields = columns(&headers, args.map.as_deref(), R::ALIASES)?;
    if !fields.iter().any(|f| f == R::TITLE) {
        bail!(
            "no column is the {}'s {} (headers: {}); say which with --map \"HEADER={}\"",
            R::KIND,
            R::TITLE,
            headers.join(", "),
            R::TITLE
        );
    }
    let key_column = match &args.key {
        Some(key) => Some(
            headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(key))
                .with_context(|| format!("--key {key}: no such column"))?,
        ),
        None => R::MATCH.and_then(|m| fields.iter().position(|f| f == m)),
    };

    let repo = ctx.repo()?;
    let mut existing: HashMap<String, DocumentId> = HashMap::new();
    if let Some(column) = key_column {
        for (id, _) in records_of_kind(&repo, R::KIND)? {
            let record = repo.read(id, R::read)??;
            if let Some(value) = record.value(&fields[column]) {
                existing.insert(value.to_lowercase(), id);
            }
        }
    }

    // A task's customer may be given by name: the customer of that name
    // here.
    let customers: HashMap<String, DocumentId> = if R::KIND == "task" {
        records_of_kind(&repo, "customer")?
            .into_iter()
            .map(|(id, entry)| (entry.title.to_lowercase(), id))
            .collect()
    } else {
        HashMap::new()
    };
    let mut plans: Vec<(u64, Plan<R>)> = Vec::new();
    let mut refused: Vec<(u64, String)> = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    // Rows are numbered as a spreadsheet shows them: the header is row 1.
    for (index, record) in reader.records().enumerate() {
        let record = record.context("the file is not valid CSV")?;
        let row = index as u64 + 2;
        let values: Vec<(String, String)> = fields
            .iter()
            .zip(record.iter())
            .map(|(field, value)| {
                let value = value.trim();
                let value = match customers.get(&value.to_lowercase()) {
                    Some(id) if field == "customer" => id.to_string(),
                    _ => value.to_owned(),
                };
                (field.clone(), value)
            })
            .collect();
        if values.iter().all(|(_, v)| v.is_empty()) {
            continue;
        }
        let key = key_column
            .and_then(|c| values.get(c))
            .map(|(_, v)| v.to_lowercase())
            .filter(|v| !v.is_empty());
        if let Some(key) = &key
            && let Some(first) = seen.insert(key.clone(), row)
        {
            refused.push((
                row,
                format!("the same {} as row {first}", key_name(&headers, key_column)),
            ));
            continue;
        }
        match plan(
            &values,
            args.date_format.as_deref(),
            key.and_then(|k| existing.get(&k).copied()),
        ) {
            Ok(plan) => plans.push((row, plan)),
            Err(reason) => refused.push((row, reason)),
        }
    }

    let (adds, updates) = plans.iter().fold((0, 0), |(a, u), (_, p)| match p {
        Plan::Add(_) => (a + 1, u),
        Plan::Update { .. } => (a, u + 1),
    });
    let refused_json: Vec<_> = refused
        .iter()
        .map(|(row, reason)| json!({ "row": row, "reason": reason }))
        .collect();
    if args.dry_run {
        let mut human = String::new();
        for (row, plan) in &plans {
            match plan {
                Plan::Add(r) => human.push_str(&format!("row {row}: add {}\n", r.title())),
                Plan::Update { name, changes, .. } => human.push_str(&format!(
                    "row {row}: update {name} ({} field(s))\n",
                    changes.len()
                )),
            }
        }
        for (row, reason) in &refused {
            human.push_str(&format!("row {row}: refused: {reason}\n"));
        }
        human.push_str(&format!(
            "dry run: {adds} to add, {updates} to update, {} refused; nothing written",
            refused.len()
        ));
        return Ok(Shown::new(
            human,
            json!({ "dry_run": true, "add": adds, "update": updates, "refused": refused_json }),
        ));
    }
    if !refused.is_empty() && !args.skip_bad {
        let (row, reason) = &refused[0];
        let more = match refused.len() {
            1 => String::new(),
            n => format!(" (and {} more; see them all with --dry-run)", n - 1),
        };
        bail!(
            "row {row} of {}: {reason}{more}; nothing was imported (--skip-bad imports the other rows)",
            args.file.display()
        );
    }

    let total = plans.len();
    let progress = !ctx.json && total >= 200;
    for (n, (_, plan)) in plans.into_iter().enumerate() {
        match plan {
            Plan::Add(record) => {
                let (id, ()) = repo.create(|tx| record.write(tx))?;
                ctx.created(id, None)?;
            }
            Plan::Update { id, changes, .. } => {
                repo.change(id, |tx| {
                    R::update(tx, |c| {
                        for (field, value) in &changes {
                            // Checked when planned.
                            let _ = c.set(field, value);
                        }
                    })
                })?;
            }
        }
        if progress && (n + 1) % 100 == 0 {
            eprint!("\rimported {}/{total}", n + 1);
        }
    }
    if progress {
        eprintln!("\rimported {total}/{total}");
    }
    Ok(Shown::new(
        format!(
            "added {adds}, updated {updates}{}; run `rapport sync` to share them",
            if refused.is_empty() {
                String::new()
            } else {
                format!(", skipped {} refused row(s)", refused.len())
            }
        ),
        json!({ "added": adds, "updated": updates, "refused": refused_json }),
    ))
}

/// The field each column sets.
fn columns(headers: &[String], map: Option<&str>, aliases: &[(&str, &str)]) -> Result<Vec<String>> {
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    for pair in map
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.trim().is_empty())
    {
        let (header, field) = pair
            .split_once('=')
            .with_context(|| format!("--map: `{pair}` is not HEADER=FIELD"))?;
        given.insert(header.trim().to_lowercase(), field.trim().to_owned());
    }
    for header in given.keys() {
        if !headers.iter().any(|h| h.to_lowercase() == *header) {
            bail!("--map names the column `{header}`, which the file does not have");
        }
    }
    let mut fields = Vec::new();
    let mut taken = BTreeSet::new();
    for header in headers {
        let field = match given.get(&header.to_lowercase()) {
            Some(field) => field.clone(),
            None => {
                let normal = header.to_lowercase().replace([' ', '-'], "_");
                aliases
                    .iter()
                    .find(|(alias, _)| *alias == normal)
                    .map_or_else(|| format!("field.{header}"), |(_, f)| (*f).to_owned())
            }
        };
        if !field.starts_with("field.") && !taken.insert(field.clone()) {
            bail!("two columns set `{field}`; say which with --map");
        }
        fields.push(field);
    }
    Ok(fields)
}

/// What a row becomes: a new customer, or changes to `existing`.
fn plan<R: Importable>(
    values: &[(String, String)],
    date_format: Option<&str>,
    existing: Option<DocumentId>,
) -> Result<Plan<R>, String> {
    let mut record = R::blank();
    let mut changes = Vec::new();
    for (field, value) in values {
        let value = if R::DATES.contains(&field.as_str()) && !value.is_empty() {
            match date_format {
                Some(format) => iso_date(value, format)
                    .ok_or_else(|| format!("`{field}` {value:?} is not a date like {format}"))?,
                None => value.clone(),
            }
        } else {
            value.clone()
        };
        // An empty cell leaves the field as it is (or its default).
        if value.is_empty() {
            continue;
        }
        record.set(field, &value).map_err(|e| e.to_string())?;
        changes.push((field.clone(), value));
    }
    if record.title() == "-" || record.title().trim().is_empty() {
        return Err(format!("the {} is empty", R::TITLE));
    }
    Ok(match existing {
        Some(id) => Plan::Update {
            id,
            name: record.title().to_owned(),
            changes,
        },
        None => Plan::Add(record),
    })
}

fn key_name(headers: &[String], column: Option<usize>) -> String {
    column
        .and_then(|c| headers.get(c))
        .cloned()
        .unwrap_or_else(|| "key".into())
}

/// The separator the header line uses most: `,`, `;` or a tab.
fn delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b',')
}

/// `value`, written as `format` says (%d, %m, %Y and separators), as
/// YYYY-MM-DD.
fn iso_date(value: &str, format: &str) -> Option<String> {
    let (mut day, mut month, mut year) = (None, None, None);
    let mut rest = value.trim();
    let mut spec = format.chars();
    while let Some(c) = spec.next() {
        if c != '%' {
            rest = rest.strip_prefix(c)?;
            continue;
        }
        let which = spec.next()?;
        let width = match which {
            'Y' => 4,
            'd' | 'm' => 2,
            _ => return None,
        };
        let digits = rest
            .chars()
            .take_while(char::is_ascii_digit)
            .take(width)
            .count();
        if digits == 0 {
            return None;
        }
        let number: u32 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        match which {
            'Y' => year = Some(number),
            'd' => day = Some(number),
            _ => month = Some(number),
        }
    }
    if !rest.is_empty() {
        return None;
    }
    Some(format!("{:04}-{:02}-{:02}", year?, month?, day?))
}

/// `rapport customer export --csv`: every customer, one row each, with a
/// column for each custom field any of them has.
pub(super) fn export(ctx: &Context, to: Option<&std::path::Path>) -> Result<Shown> {
    let repo = ctx.repo()?;
    let mut customers = Vec::new();
    for (id, _) in records_of_kind(&repo, "customer")? {
        customers.push((id, repo.read(id, Customer::read)??));
    }
    customers.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(a.0.cmp(&b.0)));
    let custom: BTreeSet<String> = customers
        .iter()
        .flat_map(|(_, c)| c.fields.keys().cloned())
        .collect();
    let mut out = ::csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "id",
        "name",
        "kind",
        "contact",
        "email",
        "stage",
        "score",
        "rep",
        "tags",
        "acquired",
        "last_contact",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    header.extend(custom.iter().map(|f| format!("field.{f}")));
    out.write_record(&header)?;
    for (id, c) in &customers {
        let mut row = vec![
            id.to_string(),
            c.name.clone(),
            c.relationship.to_string(),
            c.contact.clone(),
            c.email.clone(),
            c.stage.to_string(),
            c.score.to_string(),
            c.rep.clone().unwrap_or_default(),
            c.tags.join(", "),
            c.acquired.map(|d| d.to_string()).unwrap_or_default(),
            c.last_contact.map(|d| d.to_string()).unwrap_or_default(),
        ];
        row.extend(
            custom
                .iter()
                .map(|f| c.fields.get(f).cloned().unwrap_or_default()),
        );
        out.write_record(&row)?;
    }
    let bytes = out.into_inner().context("writing the CSV")?;
    match to {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Shown::new(
                format!(
                    "wrote {} customer(s) to {}",
                    customers.len(),
                    path.display()
                ),
                json!({ "to": path, "customers": customers.len() }),
            ))
        }
        None => Ok(Shown::new(
            String::from_utf8_lossy(&bytes).trim_end().to_owned(),
            json!({ "csv": String::from_utf8_lossy(&bytes) }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_files_format_become_iso() {
        assert_eq!(
            iso_date("31.12.2026", "%d.%m.%Y").as_deref(),
            Some("2026-12-31")
        );
        assert_eq!(
            iso_date("12/31/2026", "%m/%d/%Y").as_deref(),
            Some("2026-12-31")
        );
        assert_eq!(
            iso_date("1/2/2026", "%d/%m/%Y").as_deref(),
            Some("2026-02-01")
        );
        assert_eq!(iso_date("2026-12-31", "%d.%m.%Y"), None);
        assert_eq!(iso_date("31.12.2026 x", "%d.%m.%Y"), None);
    }

    #[test]
    fn headers_are_matched_by_name_and_the_rest_are_custom_fields() {
        let headers: Vec<String> = ["Company", "E-Mail", "Phone", "Customer No"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            columns(&headers, None, Customer::ALIASES).unwrap(),
            ["name", "email", "field.phone", "field.Customer No"]
        );
        assert_eq!(
            columns(
                &headers,
                Some("Customer No=field.number"),
                Customer::ALIASES
            )
            .unwrap()[3],
            "field.number"
        );
        assert!(columns(&headers, Some("Nope=name"), Customer::ALIASES).is_err());
        assert_eq!(delimiter("a;b;c\n1,5;2;3"), b';');
    }
}
