//! Calendar dates, stored as ISO 8601 `YYYY-MM-DD` strings.
//!
//! A date carries no time zone: it is the day a person means ("due on the
//! 3rd"), the same for every reader. The text form sorts as the date does.

use std::fmt;
use std::str::FromStr;

use autosurgeon::{Hydrate, HydrateError, Reconcile, Reconciler};
use rapport_protocol::ids::UnixMillis;

/// A calendar date between 0000-01-01 and 9999-12-31.
///
/// Built only through [`Date::new`] or [`FromStr`], so it is always a real
/// day: `2024-02-29` parses, `2023-02-29` does not.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a piece of text, or a triple of numbers, is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateError {
    /// The text is not of the form `YYYY-MM-DD` (four, two and two digits).
    #[error("`{0}` is not a date of the form YYYY-MM-DD")]
    Format(String),
    /// The year is above 9999.
    #[error("year {0} is out of range 0..=9999")]
    Year(u16),
    /// The month is not 1 to 12.
    #[error("month {0} is out of range 1..=12")]
    Month(u8),
    /// The month has no such day.
    #[error("{year:04}-{month:02} has no day {day}")]
    Day {
        /// The year.
        year: u16,
        /// The month, 1 to 12.
        month: u8,
        /// The day that does not exist.
        day: u8,
    },
}

impl Date {
    /// The date `year-month-day`, if it exists.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, DateError> {
        if year > 9999 {
            return Err(DateError::Year(year));
        }
        if !(1..=12).contains(&month) {
            return Err(DateError::Month(month));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(DateError::Day { year, month, day });
        }
        Ok(Self { year, month, day })
    }

    /// The year, 0 to 9999.
    pub const fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub const fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub const fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), in the proleptic Gregorian
    /// calendar (Howard Hinnant's `days_from_civil`).
    pub fn days_since_epoch(self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01, if it is within 0000..=9999
    /// (Howard Hinnant's `civil_from_days`).
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        let days = days.checked_add(719_468)?;
        let era = days.div_euclid(146_097);
        let day_of_era = days - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era.checked_add(era.checked_mul(400)?)? + i64::from(month <= 2);
        let narrow = |n: i64| u8::try_from(n).ok();
        Self::new(u16::try_from(year).ok()?, narrow(month)?, narrow(day)?).ok()
    }

    /// The UTC day of `at`, if it is within the years 0 to 9999.
    pub fn utc(at: UnixMillis) -> Option<Self> {
        Self::from_days_since_epoch(i64::try_from(at.0 / 86_400_000).ok()?)
    }

    /// The date `days` after this one, if it is within 0000..=9999.
    pub fn plus_days(self, days: i64) -> Option<Self> {
        Self::from_days_since_epoch(self.days_since_epoch().checked_add(days)?)
    }
}

/// `at` as an ISO 8601 UTC timestamp, `YYYY-MM-DDTHH:MM:SSZ`; years past
/// 9999 show as 9999-12-31T23:59:59Z.
pub fn utc_timestamp(at: UnixMillis) -> String {
    let secs = at.as_secs();
    let Some(date) = Date::utc(at) else {
        return "9999-12-31T23:59:59Z".to_owned();
    };
    let rest = secs % 86_400;
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The number written by `digits`, which must all be ASCII digits.
fn number(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u16::from(b - b'0'))
    })
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(text: &str) -> Result<Self, DateError> {
        let format = || DateError::Format(text.chars().take(40).collect());
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(format());
        }
        let year = number(&bytes[0..4]).ok_or_else(format)?;
        let month = number(&bytes[5..7]).ok_or_else(format)?;
        let day = number(&bytes[8..10]).ok_or_else(format)?;
        // Two digits are at most 99, so these conversions cannot fail; the
        // fallback keeps the code free of unwraps all the same.
        let month = u8::try_from(month).map_err(|_| format())?;
        let day = u8::try_from(day).map_err(|_| format())?;
        Self::new(year, month, day)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl Reconcile for Date {
    type Key<'a> = autosurgeon::reconcile::NoKey;

    fn reconcile<R: Reconciler>(&self, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(self.to_string())
    }
}

impl Hydrate for Date {
    fn hydrate_string(text: &str) -> Result<Self, HydrateError> {
        text.parse().map_err(|error: DateError| {
            HydrateError::unexpected("a date YYYY-MM-DD", error.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_and_prints() {
        let date: Date = "2024-02-29".parse().unwrap();
        assert_eq!((date.year(), date.month(), date.day()), (2024, 2, 29));
        assert_eq!(date.to_string(), "2024-02-29");
        assert_eq!(
            "0001-01-01".parse::<Date>().unwrap().to_string(),
            "0001-01-01"
        );
    }

    #[test]
    fn rejects_what_is_not_a_day() {
        let cases = [
            (
                "2023-02-29",
                DateError::Day {
                    year: 2023,
                    month: 2,
                    day: 29,
                },
            ),
            (
                "1900-02-29",
                DateError::Day {
                    year: 1900,
                    month: 2,
                    day: 29,
                },
            ),
            (
                "2024-04-31",
                DateError::Day {
                    year: 2024,
                    month: 4,
                    day: 31,
                },
            ),
            ("2024-13-01", DateError::Month(13)),
            ("2024-00-10", DateError::Month(0)),
            (
                "2024-01-00",
                DateError::Day {
                    year: 2024,
                    month: 1,
                    day: 0,
                },
            ),
        ];
        for (text, error) in cases {
            assert_eq!(text.parse::<Date>(), Err(error), "{text}");
        }
        for text in [
            "",
            "2024-1-01",
            "2024/01/01",
            "20240101",
            "2024-01-01T00",
            "+024-01-01",
            "２０２４-01-01",
        ] {
            assert!(
                matches!(text.parse::<Date>(), Err(DateError::Format(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn orders_as_the_calendar() {
        let a: Date = "2023-12-31".parse().unwrap();
        let b: Date = "2024-01-01".parse().unwrap();
        assert!(a < b);
    }

    #[test]
    fn utc_days_and_timestamps() {
        assert_eq!(utc_timestamp(UnixMillis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc_timestamp(UnixMillis(951_782_400_000)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            utc_timestamp(UnixMillis(1_767_225_599_000)),
            "2025-12-31T23:59:59Z"
        );
        assert_eq!(
            Date::utc(UnixMillis(1_767_225_599_000)).map(|d| d.to_string()),
            Some("2025-12-31".into())
        );
        let leap: Date = "2024-02-28".parse().unwrap();
        assert_eq!(leap.plus_days(1).unwrap().to_string(), "2024-02-29");
        assert_eq!(leap.plus_days(2).unwrap().to_string(), "2024-03-01");
        assert_eq!(leap.plus_days(-59).unwrap().to_string(), "2023-12-31");
    }

    #[test]
    fn days_count_from_the_epoch_both_ways() {
        let cases = [
            ("1970-01-01", 0),
            ("1969-12-31", -1),
            ("2000-03-01", 11_017),
            // Leap days: every fourth year, not 1900 or 2100, but 2000.
            ("2024-02-29", 19_782),
            ("2000-02-29", 11_016),
            ("1600-02-29", -135_081),
            ("1900-02-28", -25_509),
            ("1900-03-01", -25_508),
            ("2100-02-28", 47_540),
            ("2100-03-01", 47_541),
            ("0000-01-01", -719_528),
            ("9999-12-31", 2_932_896),
        ];
        for (text, days) in cases {
            let date: Date = text.parse().unwrap();
            assert_eq!(date.days_since_epoch(), days, "{text}");
            assert_eq!(Date::from_days_since_epoch(days), Some(date), "{text}");
        }
        // Every date a `Date` holds, 0000-01-01 to 9999-12-31, one after another.
        let mut previous = Date::new(0, 1, 1).unwrap();
        for days in -719_527..=2_932_896 {
            let date = Date::from_days_since_epoch(days).unwrap();
            assert!(date > previous, "{date} after {previous}");
            assert_eq!(date.days_since_epoch(), days);
            previous = date;
        }
        for days in [-719_529, 2_932_897, i64::MIN, i64::MAX] {
            assert_eq!(Date::from_days_since_epoch(days), None, "{days}");
        }
    }

    proptest! {
        #[test]
        fn day_numbers_round_trip(year in 0u16..=9999, month in 1u8..=12, day in 1u8..=28) {
            let date = Date::new(year, month, day).unwrap();
            prop_assert_eq!(Date::from_days_since_epoch(date.days_since_epoch()), Some(date));
        }

        #[test]
        fn text_round_trips(year in 0u16..=9999, month in 1u8..=12, day in 1u8..=31) {
            if let Ok(date) = Date::new(year, month, day) {
                prop_assert_eq!(date.to_string().parse::<Date>(), Ok(date));
            } else {
                prop_assert!(day > days_in_month(year, month));
            }
        }

        #[test]
        fn never_panics(text in "\\PC{0,12}") {
            let _ = text.parse::<Date>();
        }
    }
}
