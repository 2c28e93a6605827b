//! Recurrence: the rule of a repeating task ([`Repeat`], with its grammar
//! and date rules), and the document that holds a task's next occurrence
//! ([`next_occurrence_id`]).

use std::fmt;
use std::num::NonZeroU16;
use std::str::FromStr;

use rapport_protocol::ids::DocumentId;
use sha2::{Digest, Sha256};

use super::Date;

/// The largest count `every N …` accepts.
pub const MAX_COUNT: u16 = 999;

/// A recurrence rule.
///
/// # Grammar
///
/// A rule is ASCII case-insensitive; words are separated by any run of
/// spaces, and weekdays by commas or spaces:
///
/// ```text
/// rule     = "daily" | "weekly" | "monthly" | "yearly"
///          | "every" [count] unit
///          | "every" weekday *("," weekday)
/// count    = decimal digits, 1 to 999
/// unit     = "day" | "days" | "week" | "weeks"
///          | "month" | "months" | "year" | "years"
/// weekday  = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun"
///            (or the full English name)
/// ```
///
/// `weekly`, `every week` and `every 1 week` are one rule; `Display` prints
/// the canonical form (`weekly`, `every 2 weeks`, `every mon,thu`), which
/// is what rapport stores. Anything else is a [`RepeatError`] saying what
/// is wrong.
///
/// ```
/// use rapport_model::{Date, Repeat};
///
/// let rule: Repeat = "Every 1 Month".parse()?;
/// assert_eq!(rule.to_string(), "monthly");
/// let (jan31, feb28): (Date, Date) = ("2025-01-31".parse()?, "2025-02-28".parse()?);
/// assert_eq!(rule.next_due(jan31, jan31), Some(feb28));
/// assert_eq!(rule.next_due(feb28, jan31), Some("2025-03-31".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # The next due date
///
/// The next occurrence follows the finished one's *due date*, not the day
/// it was finished: finishing March's invoice in April makes April's
/// invoice, due on its own day, so a late series catches up one occurrence
/// at a time. A task without a due date counts from the day it is finished.
///
/// - `every N days` and `every N weeks` add N or 7·N days.
/// - `every N months` and `every N years` land on the day of the month the
///   series started on (its first due date), or on the month's last day
///   when the month is shorter: a series started on January 31 is due on
///   February 28 (29 in leap years), March 31, April 30, … It never drifts
///   to the 28th for good, as adding a month to the previous date would.
/// - `every mon,thu` is due on the first of those weekdays after the due
///   date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// Every `count` days, weeks, months or years.
    Every {
        /// How many units apart occurrences are, at least 1.
        count: NonZeroU16,
        /// The unit.
        unit: Unit,
    },
    /// On each of these days of the week.
    On(Weekdays),
}

/// The unit of [`Repeat::Every`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Calendar days.
    Day,
    /// Seven days.
    Week,
    /// Calendar months, on the series' day of the month.
    Month,
    /// Calendar years, on the series' day of the month.
    Year,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// A set of weekdays that is never empty.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weekdays(u8);

/// Why a piece of text is not a [`Repeat`] rule. Every message says how to
/// write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RepeatError {
    /// The text is empty.
    #[error("the repeat rule is empty: {HINT}")]
    Empty,
    /// The text is not of any form the grammar allows.
    #[error("`{0}` is not a repeat rule: {HINT}")]
    Unknown(String),
    /// `every N …` with N not a whole number from 1 to [`MAX_COUNT`].
    #[error("`{rule}`: `{count}` is not a count from 1 to {MAX_COUNT}; write e.g. `every 2 weeks`")]
    Count {
        /// The rule as given (shortened).
        rule: String,
        /// The count as given.
        count: String,
    },
    /// `every N WORD` with WORD not a unit.
    #[error("`{rule}`: `{unit}` is not a unit; use days, weeks, months or years")]
    Unit {
        /// The rule as given (shortened).
        rule: String,
        /// The word in the unit's place.
        unit: String,
    },
    /// `every A,B` with A or B not a day of the week.
    #[error("`{rule}`: `{day}` is not a day of the week; use mon, tue, wed, thu, fri, sat or sun")]
    Weekday {
        /// The rule as given (shortened).
        rule: String,
        /// The word in a weekday's place.
        day: String,
    },
}

const HINT: &str =
    "use daily, weekly, monthly, yearly, `every N days|weeks|months|years` or `every mon,thu`";

impl Repeat {
    /// The due date of the occurrence after one due on `due`, in a series
    /// whose first occurrence was due on `start` (see [`Repeat`]); `None`
    /// past the year 9999.
    pub fn next_due(&self, due: Date, start: Date) -> Option<Date> {
        match *self {
            Self::Every { count, unit } => {
                let count = i64::from(count.get());
                match unit {
                    Unit::Day => add_days(due, count),
                    Unit::Week => add_days(due, 7 * count),
                    Unit::Month => add_months(due, count, start.day()),
                    Unit::Year => add_months(due, 12 * count, start.day()),
                }
            }
            Self::On(days) => (1..=7)
                .filter_map(|n| add_days(due, n))
                .find(|date| days.contains(weekday(*date))),
        }
    }
}

/// The document holding the occurrence that follows task `task`: the same
/// on every replica.
///
/// It is the first 16 bytes of SHA-256(`"rapport/next-occurrence/v1\0"` ‖
/// the 16 bytes of `task`). Every replica that finishes the task (offline,
/// concurrently, twice) therefore writes the *same* document, and automerge
/// merges those writes into one task. The id depends on the task alone, not
/// on its due date: a due date edited on one replica while another finishes
/// the task must not fork the series. Each task has at most one next
/// occurrence; finishing it again (reopened, then done) makes nothing new.
pub fn next_occurrence_id(task: &DocumentId) -> DocumentId {
    let digest = Sha256::new()
        .chain_update(b"rapport/next-occurrence/v1\0")
        .chain_update(task.as_bytes())
        .finalize();
    let mut bytes = [0; DocumentId::LEN];
    bytes.copy_from_slice(&digest[..DocumentId::LEN]);
    DocumentId::from_bytes(bytes)
}

/// What finishing a task did about its next occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextOccurrence {
    /// Nothing to make: the task does not repeat or is not done (or the
    /// next date is past the year 9999).
    None,
    /// The next occurrence is in the replica.
    Next {
        /// Its document.
        id: DocumentId,
        /// Its due date.
        due: Option<Date>,
        /// Whether this call wrote it; `false` when the replica already had
        /// it (made earlier here, or by another replica and synced).
        created: bool,
    },
    /// The task's `repeat` is not a rule this version reads (a newer peer,
    /// or text written by hand): no next occurrence was made.
    BadRule(RepeatError),
}

impl Unit {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "day" | "days" => Self::Day,
            "week" | "weeks" => Self::Week,
            "month" | "months" => Self::Month,
            "year" | "years" => Self::Year,
            _ => return None,
        })
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    const fn adverb(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Week => "weekly",
            Self::Month => "monthly",
            Self::Year => "yearly",
        }
    }
}

impl Weekday {
    /// Every day, Monday first.
    pub const ALL: [Self; 7] = [
        Self::Monday,
        Self::Tuesday,
        Self::Wednesday,
        Self::Thursday,
        Self::Friday,
        Self::Saturday,
        Self::Sunday,
    ];

    /// The three-letter name the canonical form uses.
    pub const fn short(self) -> &'static str {
        match self {
            Self::Monday => "mon",
            Self::Tuesday => "tue",
            Self::Wednesday => "wed",
            Self::Thursday => "thu",
            Self::Friday => "fri",
            Self::Saturday => "sat",
            Self::Sunday => "sun",
        }
    }

    const fn long(self) -> &'static str {
        match self {
            Self::Monday => "monday",
            Self::Tuesday => "tuesday",
            Self::Wednesday => "wednesday",
            Self::Thursday => "thursday",
            Self::Friday => "friday",
            Self::Saturday => "saturday",
            Self::Sunday => "sunday",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|day| word == day.short() || word == day.long())
    }
}

impl Weekdays {
    /// The set holding `day` and the `others`.
    pub fn new(day: Weekday, others: impl IntoIterator<Item = Weekday>) -> Self {
        let bits = others
            .into_iter()
            .fold(bit(day), |bits, other| bits | bit(other));
        Self(bits)
    }

    /// Whether `day` is in the set.
    pub const fn contains(self, day: Weekday) -> bool {
        self.0 & bit(day) != 0
    }

    /// The days in the set, Monday first.
    pub fn iter(self) -> impl Iterator<Item = Weekday> {
        Weekday::ALL
            .into_iter()
            .filter(move |day| self.contains(*day))
    }
}

const fn bit(day: Weekday) -> u8 {
    1 << day as u8
}

impl fmt::Debug for Weekdays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for Repeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every { count, unit } if count.get() == 1 => f.write_str(unit.adverb()),
            Self::Every { count, unit } => write!(f, "every {count} {}s", unit.name()),
            Self::On(days) => {
                let names: Vec<&str> = days.iter().map(Weekday::short).collect();
                write!(f, "every {}", names.join(","))
            }
        }
    }
}

impl FromStr for Repeat {
    type Err = RepeatError;

    fn from_str(text: &str) -> Result<Self, RepeatError> {
        let lower = text.trim().to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let unknown = || RepeatError::Unknown(shown(text));
        match words.as_slice() {
            [] => Err(RepeatError::Empty),
            ["every", rest @ ..] => parse_every(text, rest),
            [word] => ["daily", "weekly", "monthly", "yearly"]
                .into_iter()
                .zip([Unit::Day, Unit::Week, Unit::Month, Unit::Year])
                .find(|(adverb, _)| adverb == word)
                .map(|(_, unit)| Self::Every {
                    count: NonZeroU16::MIN,
                    unit,
                })
                .ok_or_else(unknown),
            _ => Err(unknown()),
        }
    }
}

/// The part after `every`: `[count] unit`, or weekdays.
fn parse_every(text: &str, rest: &[&str]) -> Result<Repeat, RepeatError> {
    let rule = || shown(text);
    let numeric =
        |word: &str| word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    match rest {
        [] => Err(RepeatError::Unknown(rule())),
        [count] if numeric(count) => Err(RepeatError::Unknown(rule())),
        [word] => match Unit::parse(word) {
            Some(unit) => Ok(Repeat::Every {
                count: NonZeroU16::MIN,
                unit,
            }),
            None => parse_weekdays(text, word),
        },
        [count, unit] if numeric(count) => {
            let count = count
                .parse::<u16>()
                .ok()
                .filter(|n| *n <= MAX_COUNT)
                .and_then(NonZeroU16::new)
                .ok_or_else(|| RepeatError::Count {
                    rule: rule(),
                    count: (*count).to_owned(),
                })?;
            let unit = Unit::parse(unit).ok_or_else(|| RepeatError::Unit {
                rule: rule(),
                unit: (*unit).to_owned(),
            })?;
            Ok(Repeat::Every { count, unit })
        }
        _ => parse_weekdays(text, &rest.join(" ")),
    }
}

/// `mon,thu`, `mon, thu` or `mon thu`.
fn parse_weekdays(text: &str, list: &str) -> Result<Repeat, RepeatError> {
    let mut days = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .map(|word| {
            Weekday::parse(word).ok_or_else(|| RepeatError::Weekday {
                rule: shown(text),
                day: word.to_owned(),
            })
        });
    let first = days
        .next()
        .ok_or_else(|| RepeatError::Unknown(shown(text)))??;
    let others = days.collect::<Result<Vec<_>, _>>()?;
    Ok(Repeat::On(Weekdays::new(first, others)))
}

/// Keeps error messages short when someone pastes a long text.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

// ---- calendar arithmetic, in days since 1970-01-01 ----

/// `date` plus `days`; `None` outside the years 0..=9999.
fn add_days(date: Date, days: i64) -> Option<Date> {
    Date::from_days_since_epoch(date.days_since_epoch().checked_add(days)?)
}

/// `months` calendar months after `date`, on day `day` or the month's last
/// day if it is shorter; `None` past the year 9999.
fn add_months(date: Date, months: i64, day: u8) -> Option<Date> {
    let index = i64::from(date.year()) * 12 + i64::from(date.month()) - 1 + months;
    let year = u16::try_from(index.div_euclid(12)).ok()?;
    let month = u8::try_from(index.rem_euclid(12) + 1).ok()?;
    // At most three days past a month's end: 31 down to 28.
    (1..=day)
        .rev()
        .find_map(|day| Date::new(year, month, day).ok())
}

/// The day of the week of `date`.
fn weekday(date: Date) -> Weekday {
    // 1970-01-01 was a Thursday, index 3 with Monday 0.
    let index = (date.days_since_epoch() + 3).rem_euclid(7);
    Weekday::ALL[usize::try_from(index).unwrap_or(0)]
}

#[cfg(test)]
#[path = "repeat_tests.rs"]
mod tests;
