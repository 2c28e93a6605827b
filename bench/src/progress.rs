//! The progress display of `rapport bench`, on stderr: one line rewritten
//! in place on a terminal, a line every few seconds otherwise. With
//! `--json` it still goes to stderr, so stdout holds only the JSON value.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a non-terminal gets a progress line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// How often a terminal line is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Progress {
    terminal: bool,
    last: Option<Instant>,
    /// A line is on screen and needs a newline before anything else.
    open_line: bool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: None,
            open_line: false,
        }
    }

    /// A step begins: always shown, on its own line.
    pub(crate) fn step(&mut self, what: impl std::fmt::Display) {
        self.clear();
        eprintln!("{what}");
        self.last = None;
    }

    /// How far the current step is; shown now and then.
    pub(crate) fn update(&mut self, what: impl std::fmt::Display) {
        let every = if self.terminal {
            REDRAW_EVERY
        } else {
            PLAIN_EVERY
        };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        if self.terminal {
            eprint!("\r\x1b[2K  {what}");
            self.open_line = true;
        } else {
            eprintln!("  {what}");
        }
    }

    /// Ends the rewritten line, if one is showing.
    pub(crate) fn clear(&mut self) {
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
    }
}

/// `[#####-----]`: how much of a whole is done.
pub(crate) fn bar(done: f64, total: f64) -> String {
    const WIDTH: usize = 20;
    let share = if total > 0.0 {
        (done / total).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let filled = (share * WIDTH as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(WIDTH - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills() {
        assert_eq!(bar(0.0, 10.0), format!("[{}]", "-".repeat(20)));
        assert_eq!(
            bar(5.0, 10.0),
            format!("[{}{}]", "#".repeat(10), "-".repeat(10))
        );
        assert_eq!(bar(12.0, 10.0), format!("[{}]", "#".repeat(20)));
        assert_eq!(bar(0.0, 0.0), format!("[{}]", "#".repeat(20)));
    }
}
