//! What a scenario reports, printed as a table for people or as one JSON
//! value, and the side-by-side comparison `tests/bench/compare.sh` writes
//! to `BENCHMARKS.md` (`rapport bench report`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::machine::Machine;
use super::stats::{Summary, bytes};

/// The unit of a figure, which says how to print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    Seconds,
    Bytes,
    PerSecond,
    Count,
    /// A plain ratio (bytes on the wire per byte saved, say).
    Ratio,
}

/// One figure: a single value or a distribution of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Value {
    Single(Option<f64>),
    Samples(Summary),
}

/// One line of a scenario's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    /// Which case of the scenario (`16 editors, pre-grown`), empty if one.
    pub(crate) case: String,
    pub(crate) measure: String,
    pub(crate) unit: Unit,
    pub(crate) value: Value,
}

/// The result of one scenario run against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub(crate) scenario: String,
    /// The server's name as given with `--label`.
    pub(crate) server: String,
    pub(crate) url: String,
    /// `YYYY-MM-DD`, UTC.
    pub(crate) date: String,
    pub(crate) machine: Machine,
    pub(crate) params: serde_json::Value,
    pub(crate) rows: Vec<Row>,
    /// Sentences about how to read the figures.
    pub(crate) notes: Vec<String>,
}

impl Report {
    pub(crate) fn new(scenario: &str, server: &str, url: &str, params: serde_json::Value) -> Self {
        Self {
            scenario: scenario.to_owned(),
            server: server.to_owned(),
            url: url.to_owned(),
            date: today(),
            machine: Machine::read(),
            params,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn single(&mut self, case: &str, measure: &str, unit: Unit, value: Option<f64>) {
        self.rows.push(Row {
            case: case.to_owned(),
            measure: measure.to_owned(),
            unit,
            value: Value::Single(value),
        });
    }

    /// The server's resident memory after an idle period (`measure`), and
    /// its ratio to the memory `base` read `since` (`after the start`).
    pub(crate) fn memory_after_idle(
        &mut self,
        case: &str,
        measure: &str,
        after: Option<u64>,
        since: &str,
        base: Option<u64>,
    ) {
        self.single(case, measure, Unit::Bytes, after.map(|b| b as f64));
        self.single(
            case,
            &format!("after the idle period / {since}"),
            Unit::Ratio,
            after.zip(base).map(|(a, s)| a as f64 / s.max(1) as f64),
        );
    }

    pub(crate) fn samples(&mut self, case: &str, measure: &str, summary: Summary) {
        self.rows.push(Row {
            case: case.to_owned(),
            measure: measure.to_owned(),
            unit: Unit::Seconds,
            value: Value::Samples(summary),
        });
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The table for people.
    /// The report as a table for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} against {} ({}), {}\n\n",
            self.scenario, self.server, self.url, self.date
        );
        out.push_str("| case | measure | median (p50) | p99 | min – max | samples |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for row in &self.rows {
            let (p50, p99, range, n) = match &row.value {
                Value::Single(v) => (
                    format_value(row.unit, *v),
                    String::new(),
                    String::new(),
                    String::new(),
                ),
                Value::Samples(s) => (
                    format_percentile(s.p50, s),
                    format_percentile(s.p99, s),
                    format!(
                        "{} – {}",
                        format_value(row.unit, s.min),
                        format_value(row.unit, s.max)
                    ),
                    samples_text(s),
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {p50} | {p99} | {range} | {n} |",
                row.case, row.measure
            );
        }
        let _ = write!(out, "\nmachine: {}", self.machine.describe());
        for note in &self.notes {
            let _ = write!(out, "\nnote: {note}");
        }
        out
    }
}

fn samples_text(s: &Summary) -> String {
    if s.missing > 0 {
        format!("{} ({} missing)", s.count, s.missing)
    } else {
        s.count.to_string()
    }
}

/// A percentile that fell among the missing samples is only known to be
/// beyond the largest measured one.
fn format_percentile(p: Option<f64>, s: &Summary) -> String {
    match (p, s.max) {
        (Some(v), _) => format_value(Unit::Seconds, Some(v)),
        (None, Some(max)) if s.missing > 0 => {
            format!("> {}", format_value(Unit::Seconds, Some(max)))
        }
        (None, _) if s.missing > 0 => "never".to_owned(),
        (None, _) => "–".to_owned(),
    }
}

/// A value with its unit, three significant figures or so.
pub(crate) fn format_value(unit: Unit, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "–".to_owned();
    };
    match unit {
        Unit::Seconds => duration(v),
        Unit::Bytes => bytes(v.max(0.0) as u64),
        Unit::PerSecond => format!("{}/s", count(v)),
        Unit::Count => count(v),
        Unit::Ratio => format!("{v:.2}"),
    }
}

fn duration(seconds: f64) -> String {
    let abs = seconds.abs();
    if abs >= 1.0 {
        format!("{seconds:.2} s")
    } else if abs >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{:.1} µs", seconds * 1e6)
    }
}

fn count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        group_thousands(v as i64)
    } else if v.abs() >= 100.0 {
        group_thousands(v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    rapport_model::Date::utc(rapport_client::now())
        .map(|date| date.to_string())
        .unwrap_or_default()
}

/// The figures one measure takes for the comparison table: a single value
/// gives one line, a distribution gives its p50 and p99.
fn comparable(row: &Row) -> Vec<(String, Option<f64>, String)> {
    match &row.value {
        Value::Single(v) => vec![(row.measure.clone(), *v, format_value(row.unit, *v))],
        Value::Samples(s) => vec![
            (
                format!("{} p50", row.measure),
                s.p50,
                format_percentile(s.p50, s),
            ),
            (
                format!("{} p99", row.measure),
                s.p99,
                format_percentile(s.p99, s),
            ),
        ],
    }
}

/// A figure in the comparison: its value, and how it prints.
type Cell = (Option<f64>, String);

/// The label of our server's runs without tokens, beside the runs with
/// them (labelled `ours`): the cost of authentication, apart.
pub fn without_tokens(ours: &str) -> String {
    format!("{ours} without tokens")
}

/// The side-by-side tables of `BENCHMARKS.md`: for each scenario, each
/// case and measure with our figure, theirs and the ratio ours/theirs;
/// where our server also ran without tokens ([`without_tokens`]), that
/// figure and the ratio with/without tokens besides.
pub(crate) fn comparison(reports: &[Report], ours: &str) -> String {
    let open = without_tokens(ours);
    let mut by_scenario: BTreeMap<(usize, String), Vec<&Report>> = BTreeMap::new();
    for (n, report) in reports.iter().enumerate() {
        let first = reports
            .iter()
            .position(|r| r.scenario == report.scenario)
            .unwrap_or(n);
        by_scenario
            .entry((first, report.scenario.clone()))
            .or_default()
            .push(report);
    }
    let mut out = String::new();
    for ((_, scenario), runs) in by_scenario {
        // Columns: ours, ours without tokens (if run), theirs (if run).
        let theirs_name = runs
            .iter()
            .find(|r| r.server != ours && r.server != open)
            .map(|r| r.server.clone());
        let has_open = runs.iter().any(|r| r.server == open);
        let mut names = vec![ours.to_owned()];
        if has_open {
            names.push(open.clone());
        }
        names.extend(theirs_name.clone());
        let mut ratios: Vec<(&str, usize, usize)> = Vec::new();
        if theirs_name.is_some() {
            ratios.push(("ours/theirs", 0, names.len() - 1));
        }
        if has_open {
            ratios.push(("with/without tokens", 0, 1));
        }
        let _ = writeln!(out, "## {scenario}\n");
        let header: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .chain(ratios.iter().map(|r| r.0))
            .collect();
        let _ = writeln!(out, "| case | measure | {} |", header.join(" | "));
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(header.len()));
        // Rows in the order our runs give them, then any only others have.
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut cells: BTreeMap<(String, String), Vec<Option<Cell>>> = BTreeMap::new();
        for run in &runs {
            let Some(side) = names.iter().position(|n| *n == run.server) else {
                continue;
            };
            for row in &run.rows {
                for (measure, value, text) in comparable(row) {
                    let key = (row.case.clone(), measure);
                    if !cells.contains_key(&key) {
                        keys.push(key.clone());
                    }
                    cells.entry(key).or_insert_with(|| vec![None; names.len()])[side] =
                        Some((value, text));
                }
            }
        }
        keys.sort_by_key(|k| usize::from(cells[k][0].is_none()));
        for key in keys {
            let row = &cells[&key];
            let text = |c: &Option<Cell>| {
                c.as_ref()
                    .map_or_else(|| "not run".to_owned(), |(_, t)| t.clone())
            };
            let ratio = |a: &Option<Cell>, b: &Option<Cell>| match (a, b) {
                (Some((Some(x), _)), Some((Some(y), _))) if *y != 0.0 => format!("{:.2}", x / y),
                _ => "–".to_owned(),
            };
            let figures: Vec<String> = row
                .iter()
                .map(text)
                .chain(ratios.iter().map(|&(_, a, b)| ratio(&row[a], &row[b])))
                .collect();
            let _ = writeln!(out, "| {} | {} | {} |", key.0, key.1, figures.join(" | "));
        }
        let notes: Vec<&String> = runs.iter().flat_map(|r| &r.notes).collect();
        let mut seen = std::collections::BTreeSet::new();
        for note in notes {
            if seen.insert(note) {
                let _ = writeln!(out, "\n- {note}");
            }
        }
        out.push('\n');
    }
    out
}

/// The scenarios (`` `name` ``, in the order they ran) that no server but
/// ours, with or without tokens, ran.
fn ours_alone(reports: &[Report], ours: &str) -> Vec<String> {
    let open = without_tokens(ours);
    let mut alone: Vec<String> = Vec::new();
    for report in reports {
        let name = format!("`{}`", report.scenario);
        let only_ours = reports
            .iter()
            .filter(|r| r.scenario == report.scenario)
            .all(|r| r.server == ours || r.server == open);
        if only_ours && !alone.contains(&name) {
            alone.push(name);
        }
    }
    alone
}

/// `BENCHMARKS.md`: when, where and how it was measured, then the
/// side-by-side tables.
pub fn markdown(reports: &[Report], ours: &str, command: &str, notes: &[String]) -> String {
    let mut out =
        String::from("# Benchmarks: rapport's relay and the automerge-repo JS sync server\n\n");
    out.push_str(
        "Written by `tests/bench/compare.sh` (do not edit by hand: rerun it; it keeps the \
         `## web app` section `tests/bench/web.sh --write` adds). Each scenario ran against \
         every server in the same run, alternately, with the same sizes; the load generator is \
         `rapport bench` (see `docs/benchmarks.md` for what each figure means, the targets and \
         what stands in the way).",
    );
    let alone = ours_alone(reports, ours);
    if !alone.is_empty() {
        let _ = write!(
            out,
            " Ours alone, the JS server having no counterpart: {}.",
            alone.join(", ")
        );
    }
    out.push_str("\n\n");
    if let Some(first) = reports.first() {
        let _ = writeln!(out, "- date: {}", first.date);
        let _ = writeln!(out, "- machine: {}", first.machine.describe());
    }
    let _ = writeln!(out, "- command: `{command}`");
    for note in notes {
        let _ = writeln!(out, "- {note}");
    }
    out.push('\n');
    out.push_str(&comparison(reports, ours));
    out.trim_end().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(server: &str, forward_p50: f64, cpu: Option<f64>) -> Report {
        let mut r = Report::new("typing", server, "ws://127.0.0.1:1/", serde_json::json!({}));
        r.samples(
            "2 editors",
            "forward",
            Summary::of(vec![forward_p50, forward_p50 * 2.0], 0),
        );
        r.single("2 editors", "relay CPU per change", Unit::Seconds, cpu);
        r
    }

    #[test]
    fn values_print_with_their_units() {
        assert_eq!(format_value(Unit::Seconds, Some(0.0123)), "12.30 ms");
        assert_eq!(format_value(Unit::Seconds, Some(0.000_045)), "45.0 µs");
        assert_eq!(format_value(Unit::Seconds, Some(2.5)), "2.50 s");
        assert_eq!(
            format_value(Unit::Bytes, Some(3.0 * 1024.0 * 1024.0)),
            "3.0 MiB"
        );
        assert_eq!(format_value(Unit::PerSecond, Some(20_512.4)), "20,512/s");
        assert_eq!(format_value(Unit::Count, Some(1_234_567.0)), "1,234,567");
        assert_eq!(format_value(Unit::Ratio, Some(1.234)), "1.23");
        assert_eq!(format_value(Unit::Count, None), "–");
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn a_percentile_among_missing_samples_is_a_lower_bound() {
        let mut r = Report::new("typing", "x", "u", serde_json::json!({}));
        r.samples("c", "forward", Summary::of(vec![0.5], 1));
        let text = r.to_text();
        assert!(
            text.contains("| c | forward | 500.00 ms | > 500.00 ms |"),
            "{text}"
        );
        assert!(text.contains("1 (1 missing)"), "{text}");
    }

    #[test]
    fn the_comparison_pairs_rows_and_divides() {
        let ours = report("rapport", 0.001, Some(0.000_05));
        let theirs = report("automerge-repo", 0.004, None);
        let table = comparison(&[ours, theirs], "rapport");
        assert!(table.starts_with("## typing\n"), "{table}");
        assert!(table.contains("| case | measure | rapport | automerge-repo | ours/theirs |"));
        assert!(
            table.contains("| 2 editors | forward p50 | 1.00 ms | 4.00 ms | 0.25 |"),
            "{table}"
        );
        assert!(
            table.contains("| 2 editors | relay CPU per change | 50.0 µs | – | – |"),
            "{table}"
        );
    }

    #[test]
    fn a_run_without_tokens_shows_the_cost_of_authentication() {
        let ours = report("rapport", 0.002, None);
        let open = report(&without_tokens("rapport"), 0.001, None);
        let theirs = report("automerge-repo", 0.004, None);
        let table = comparison(&[ours, theirs, open], "rapport");
        assert!(
            table.contains(
                "| case | measure | rapport | rapport without tokens | automerge-repo | ours/theirs | with/without tokens |\n|---|---|---|---|---|---|---|\n"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| 2 editors | forward p50 | 2.00 ms | 1.00 ms | 4.00 ms | 0.50 | 2.00 |"
            ),
            "{table}"
        );
    }

    #[test]
    fn a_scenario_run_only_here_has_one_column() {
        let table = comparison(&[report("rapport", 0.001, None)], "rapport");
        assert!(
            table.contains("| case | measure | rapport |\n|---|---|---|\n"),
            "{table}"
        );
        assert!(
            table.contains("| 2 editors | forward p50 | 1.00 ms |\n"),
            "{table}"
        );
    }

    #[test]
    fn the_markdown_says_when_where_and_how() {
        let md = markdown(
            &[report("rapport", 0.001, None), report("js", 0.002, None)],
            "rapport",
            "tests/bench/compare.sh --quick",
            &["the machine was shared".to_owned()],
        );
        assert!(
            md.contains("- command: `tests/bench/compare.sh --quick`"),
            "{md}"
        );
        assert!(md.contains("- the machine was shared"), "{md}");
        assert!(
            md.contains("| 2 editors | forward p99 | 2.00 ms | 4.00 ms | 0.50 |"),
            "{md}"
        );
        assert!(md.ends_with("|\n"), "{md}");
    }

    #[test]
    fn scenarios_only_ours_ran_are_named_and_have_sections_of_their_own() {
        let case = "16 editors, pre-grown";
        let mut live = Report::new("live-replica", "rapport", "u", serde_json::json!({}));
        let visible = Summary::of(vec![0.1, 0.2], 0);
        live.samples(case, "visible in a live rapport-client replica", visible);
        live.single(
            case,
            "replica backlog when typing stops",
            Unit::Count,
            Some(3.0),
        );
        let mut many = Report::new("many-docs", "rapport", "u", serde_json::json!({}));
        many.single("c", "relay start", Unit::Seconds, Some(1.5));
        let runs = [
            report("rapport", 0.001, None),
            live,
            report("js", 0.002, None),
            many,
        ];
        let md = markdown(&runs, "rapport", "compare.sh", &[]);
        assert!(
            md.contains(
                "Ours alone, the JS server having no counterpart: `live-replica`, `many-docs`.\n"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "## live-replica\n\n| case | measure | rapport |\n|---|---|---|\n\
                 | 16 editors, pre-grown | visible in a live rapport-client replica p50 | 100.00 ms |\n\
                 | 16 editors, pre-grown | visible in a live rapport-client replica p99 | 200.00 ms |\n\
                 | 16 editors, pre-grown | replica backlog when typing stops | 3 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("## many-docs\n\n| case | measure | rapport |\n|---|---|---|\n| c | relay start | 1.50 s |\n"),
            "{md}"
        );
        // typing (both servers) first, in the order the scenarios ran.
        assert!(md.find("## typing").unwrap() < md.find("## live-replica").unwrap());
    }

    #[test]
    fn reports_round_trip_through_json() {
        let r = report("rapport", 0.001, Some(1.0));
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.rows, r.rows);
        assert_eq!(back.server, "rapport");
    }
}
