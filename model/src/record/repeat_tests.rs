use proptest::prelude::*;

use super::*;

fn date(text: &str) -> Date {
    text.parse().expect("a valid test date")
}

fn every(count: u16, unit: Unit) -> Repeat {
    Repeat::Every {
        count: NonZeroU16::new(count).expect("a non-zero test count"),
        unit,
    }
}

fn on(days: &[Weekday]) -> Repeat {
    Repeat::On(Weekdays::new(days[0], days[1..].iter().copied()))
}

fn parse(text: &str) -> Repeat {
    text.parse()
        .unwrap_or_else(|e| panic!("`{text}` should parse: {e}"))
}

/// The dates a rule gives from `first`, `n` of them, the series starting on
/// `first`.
fn series(rule: &str, first: &str, n: usize) -> Vec<String> {
    let (rule, start) = (parse(rule), date(first));
    std::iter::successors(Some(start), |due| rule.next_due(*due, start))
        .skip(1)
        .take(n)
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn the_four_words_and_their_long_forms() {
    use Unit::*;
    let cases = [
        ("daily", every(1, Day)),
        ("Weekly", every(1, Week)),
        ("  MONTHLY ", every(1, Month)),
        ("yearly", every(1, Year)),
        ("every day", every(1, Day)),
        ("every 1 week", every(1, Week)),
        ("every  2   weeks", every(2, Week)),
        ("Every 3 Days", every(3, Day)),
        ("every 1 months", every(1, Month)),
        ("every 18 months", every(18, Month)),
        ("every 999 years", every(999, Year)),
    ];
    for (text, rule) in cases {
        assert_eq!(parse(text), rule, "{text}");
    }
}

#[test]
fn weekdays_in_any_order_and_spelling() {
    use Weekday::*;
    for text in [
        "every mon,thu",
        "every thu,mon",
        "every Monday, Thursday",
        "every mon thu",
        "every mon,thu,mon",
    ] {
        assert_eq!(parse(text), on(&[Monday, Thursday]), "{text}");
    }
    assert_eq!(parse("every sunday"), on(&[Sunday]));
}

#[test]
fn canonical_forms() {
    let cases = [
        ("Every 1 Week", "weekly"),
        ("every day", "daily"),
        ("every 2 week", "every 2 weeks"),
        ("every 12 MONTHS", "every 12 months"),
        ("every fri, Monday,wed", "every mon,wed,fri"),
        ("yearly", "yearly"),
    ];
    for (text, canonical) in cases {
        assert_eq!(parse(text).to_string(), canonical, "{text}");
    }
}

#[test]
fn bad_rules_say_what_is_wrong() {
    let rule = |text: &str| text.to_owned();
    let cases = [
        ("", RepeatError::Empty),
        ("   ", RepeatError::Empty),
        ("fortnightly", RepeatError::Unknown(rule("fortnightly"))),
        ("weekly please", RepeatError::Unknown(rule("weekly please"))),
        ("every", RepeatError::Unknown(rule("every"))),
        ("every 2", RepeatError::Unknown(rule("every 2"))),
        (
            "cron:0 9 * * 1",
            RepeatError::Unknown(rule("cron:0 9 * * 1")),
        ),
        (
            "every 0 weeks",
            RepeatError::Count {
                rule: rule("every 0 weeks"),
                count: "0".into(),
            },
        ),
        (
            "every 1000 days",
            RepeatError::Count {
                rule: rule("every 1000 days"),
                count: "1000".into(),
            },
        ),
        (
            "every -1 days",
            RepeatError::Count {
                rule: rule("every -1 days"),
                count: "-1".into(),
            },
        ),
        (
            "every 2.5 weeks",
            RepeatError::Count {
                rule: rule("every 2.5 weeks"),
                count: "2.5".into(),
            },
        ),
        (
            "every 2 fortnights",
            RepeatError::Unit {
                rule: rule("every 2 fortnights"),
                unit: "fortnights".into(),
            },
        ),
        (
            "every mon,funday",
            RepeatError::Weekday {
                rule: rule("every mon,funday"),
                day: "funday".into(),
            },
        ),
        (
            "every 2 weeks on mon",
            RepeatError::Weekday {
                rule: rule("every 2 weeks on mon"),
                day: "2".into(),
            },
        ),
    ];
    for (text, error) in cases {
        assert_eq!(text.parse::<Repeat>(), Err(error), "{text:?}");
    }
}

#[test]
fn error_messages_are_one_line_and_show_the_fix() {
    for text in [
        "",
        "fortnightly",
        "every 0 weeks",
        "every 2 eons",
        "every funday",
    ] {
        let message = text.parse::<Repeat>().unwrap_err().to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            ["daily", "every 2 weeks", "days, weeks", "mon, tue"]
                .iter()
                .any(|fix| message.contains(fix)),
            "{message}"
        );
    }
    let long = format!("every {}", "x".repeat(500));
    let message = long.parse::<Repeat>().unwrap_err().to_string();
    assert!(message.len() < 700 && message.contains('…'), "{message}");
}

#[test]
fn days_and_weeks_cross_month_year_and_leap_day() {
    assert_eq!(
        series("daily", "2024-02-28", 2),
        ["2024-02-29", "2024-03-01"]
    );
    assert_eq!(series("daily", "2023-02-28", 1), ["2023-03-01"]);
    assert_eq!(series("daily", "2024-12-31", 1), ["2025-01-01"]);
    assert_eq!(
        series("weekly", "2024-12-30", 2),
        ["2025-01-06", "2025-01-13"]
    );
    assert_eq!(series("every 2 weeks", "2025-02-20", 1), ["2025-03-06"]);
    assert_eq!(series("every 10 days", "2024-02-25", 1), ["2024-03-06"]);
}

#[test]
fn monthly_from_the_31st_keeps_coming_back_to_month_ends() {
    assert_eq!(
        series("monthly", "2023-01-31", 13),
        [
            "2023-02-28",
            "2023-03-31",
            "2023-04-30",
            "2023-05-31",
            "2023-06-30",
            "2023-07-31",
            "2023-08-31",
            "2023-09-30",
            "2023-10-31",
            "2023-11-30",
            "2023-12-31",
            "2024-01-31",
            "2024-02-29",
        ]
    );
    assert_eq!(
        series("monthly", "2024-01-30", 2),
        ["2024-02-29", "2024-03-30"]
    );
    assert_eq!(series("monthly", "2024-12-15", 1), ["2025-01-15"]);
    assert_eq!(
        series("every 3 months", "2024-11-30", 2),
        ["2025-02-28", "2025-05-30"]
    );
}

#[test]
fn monthly_keeps_the_series_day_when_an_occurrence_was_moved() {
    let monthly = parse("monthly");
    // The series started on the 31st; this occurrence was moved to the 5th.
    let next = monthly.next_due(date("2025-03-05"), date("2025-01-31"));
    assert_eq!(next, Some(date("2025-04-30")));
}

#[test]
fn yearly_from_a_leap_day() {
    assert_eq!(
        series("yearly", "2024-02-29", 4),
        ["2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"]
    );
    assert_eq!(series("every 2 years", "2023-06-15", 1), ["2025-06-15"]);
}

#[test]
fn weekdays_take_the_next_listed_day() {
    // 2025-01-06 is a Monday.
    assert_eq!(
        series("every mon,thu", "2025-01-06", 3),
        ["2025-01-09", "2025-01-13", "2025-01-16"]
    );
    // From a day not in the list (Saturday 2025-01-11).
    let rule = parse("every mon,thu");
    let saturday = date("2025-01-11");
    assert_eq!(rule.next_due(saturday, saturday), Some(date("2025-01-13")));
    assert_eq!(series("every sun", "2025-01-05", 1), ["2025-01-12"]);
}

#[test]
fn weekday_of_known_dates() {
    let cases = [
        ("1970-01-01", Weekday::Thursday),
        ("2000-01-01", Weekday::Saturday),
        ("2024-02-29", Weekday::Thursday),
        ("1969-12-31", Weekday::Wednesday),
        ("0001-01-01", Weekday::Monday),
    ];
    for (text, day) in cases {
        assert_eq!(weekday(date(text)), day, "{text}");
    }
}

#[test]
fn nothing_past_the_year_9999() {
    let end = date("9999-12-31");
    assert_eq!(parse("daily").next_due(end, end), None);
    let mid = date("9999-12-15");
    assert_eq!(parse("monthly").next_due(mid, mid), None);
    assert_eq!(parse("every mon").next_due(end, end), None);
    assert_eq!(
        parse("every 999 years").next_due(mid, mid),
        None,
        "far beyond"
    );
}

#[test]
fn the_next_occurrence_id_is_fixed_by_the_task_alone() {
    let a = DocumentId::from_bytes([1; 16]);
    let b = DocumentId::from_bytes([2; 16]);
    assert_eq!(next_occurrence_id(&a), next_occurrence_id(&a));
    assert_ne!(next_occurrence_id(&a), next_occurrence_id(&b));
    assert_ne!(next_occurrence_id(&a), a);
    assert_ne!(
        next_occurrence_id(&next_occurrence_id(&a)),
        next_occurrence_id(&a)
    );
    // Pinned: a change here would fork every series between versions.
    assert_eq!(
        next_occurrence_id(&a).as_bytes(),
        &Sha256::digest([b"rapport/next-occurrence/v1\0".as_slice(), &[1; 16]].concat())[..16]
    );
}

fn rule() -> impl Strategy<Value = Repeat> {
    let unit = prop_oneof![
        Just(Unit::Day),
        Just(Unit::Week),
        Just(Unit::Month),
        Just(Unit::Year)
    ];
    prop_oneof![
        (1..=MAX_COUNT, unit).prop_map(|(count, unit)| every(count, unit)),
        proptest::collection::vec(0..7usize, 1..8).prop_map(|days| {
            let days: Vec<Weekday> = days.into_iter().map(|i| Weekday::ALL[i]).collect();
            on(&days)
        }),
    ]
}

fn any_date() -> impl Strategy<Value = Date> {
    (0u16..=9999, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).expect("day ≤ 28"))
}

proptest! {
    #[test]
    fn canonical_text_round_trips(rule in rule()) {
        let text = rule.to_string();
        prop_assert_eq!(text.parse::<Repeat>(), Ok(rule));
        prop_assert_eq!(text.to_uppercase().parse::<Repeat>(), Ok(rule));
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,30}") {
        let _ = text.parse::<Repeat>();
    }

    #[test]
    fn parsing_words_never_panics(words in proptest::collection::vec(
        prop_oneof![
            Just("every".to_owned()), Just("2".to_owned()), Just("weeks".to_owned()),
            Just("mon,".to_owned()), Just(",".to_owned()), Just("-0".to_owned()),
            "[a-z0-9,]{0,6}",
        ],
        0..5,
    )) {
        let _ = words.join(" ").parse::<Repeat>();
    }

    #[test]
    fn the_next_due_date_is_later_and_in_rule(rule in rule(), due in any_date(), start in any_date()) {
        if let Some(next) = rule.next_due(due, start) {
            prop_assert!(next > due);
            match rule {
                Repeat::On(days) => {
                    prop_assert!(days.contains(weekday(next)));
                    prop_assert!(next.days_since_epoch() - due.days_since_epoch() <= 7);
                }
                Repeat::Every { unit: Unit::Month | Unit::Year, .. } => {
                    let month_end = add_days(next, 1).is_none_or(|after| after.day() == 1);
                    prop_assert!(
                        next.day() == start.day() || (next.day() < start.day() && month_end),
                        "{} from {} (series day {})", next, due, start.day()
                    );
                }
                Repeat::Every { count, unit } => {
                    let step = i64::from(count.get()) * if unit == Unit::Week { 7 } else { 1 };
                    prop_assert_eq!(next.days_since_epoch() - due.days_since_epoch(), step);
                }
            }
        } else {
            // Only the end of the calendar stops a rule.
            let most = match rule {
                Repeat::On(_) => 7,
                Repeat::Every { count, unit } => {
                    let days = match unit { Unit::Day => 1, Unit::Week => 7, Unit::Month => 31, Unit::Year => 366 };
                    i64::from(count.get()) * days
                }
            };
            prop_assert!(due.days_since_epoch() + most > date("9999-12-31").days_since_epoch(), "{} from {}", rule, due);
        }
    }
}
