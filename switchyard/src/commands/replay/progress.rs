//! Progress of a replay on stderr: an `indicatif` bar (records read, rate, ETA) at a terminal,
//! plain lines once a second when `--progress` forces it elsewhere, and the closing summary.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

const TEMPLATE: &str =
    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records {rate} ETA {eta}";
/// The same without the bar, for logs.
const LINE_TEMPLATE: &str =
    "replay: {human_pos}/{human_len} records read, {rate}, elapsed {elapsed}, ETA {eta}";

/// A progress bar over `total` offsets: drawn at a terminal, or as lines when `forced` and
/// stderr is not one; hidden otherwise.
pub fn bar(total: u64, forced: bool) -> ProgressBar {
    let at_terminal = std::io::stderr().is_terminal();
    let (target, template, tick) = if at_terminal {
        (ProgressDrawTarget::stderr(), TEMPLATE, 100)
    } else if forced {
        (
            ProgressDrawTarget::term_like_with_hz(Box::new(LineTerm::default()), 1),
            LINE_TEMPLATE,
            1000,
        )
    } else {
        return ProgressBar::hidden();
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0} records/s", state.per_sec());
            },
        );
    let bar = ProgressBar::with_draw_target(Some(total), target).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(tick));
    bar
}

/// A "terminal" that writes each drawing of the bar as its own line on stderr, for logs and
/// pipes (cursor moves and clearing are ignored).
#[derive(Debug, Default)]
struct LineTerm {
    line: Mutex<String>,
}

impl TermLike for LineTerm {
    fn width(&self) -> u16 {
        120
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)?;
        self.flush()
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if let Ok(mut line) = self.line.lock() {
            line.push_str(s.trim_start_matches('\r'));
        }
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let text = match self.line.lock() {
            Ok(mut line) => std::mem::take(&mut *line),
            Err(_) => return Ok(()),
        };
        let text = text.trim_end();
        if text.is_empty() {
            return Ok(());
        }
        writeln!(std::io::stderr().lock(), "{text}")
    }
}

/// What a replay did, for its closing line on stderr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Records read in the range (decoded or not).
    pub read: u64,
    /// Records printed (decoded and matching every filter).
    pub matched: u64,
    /// Records that did not decode.
    pub failed: u64,
    /// The first decode failure: where and why.
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    /// Whether it stopped early (a signal, or stdout closed).
    pub stopped_early: Option<&'static str>,
}

impl Summary {
    /// Records read per second.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.read as f64 / seconds
        } else {
            0.0
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replay: {} records read, {} matched, {} decode failures in {:.1} s ({:.0} records/s)",
            self.read,
            self.matched,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.rate()
        )?;
        if let Some(reason) = self.stopped_early {
            write!(f, "; stopped early: {reason}")?;
        }
        if let Some(first) = &self.first_failure {
            write!(
                f,
                "\nreplay: {} records could not be decoded; the first: {first}",
                self.failed
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_counts_and_rate() {
        let summary = Summary {
            read: 1000,
            matched: 10,
            elapsed: Duration::from_millis(500),
            ..Summary::default()
        };
        assert_eq!(
            summary.to_string(),
            "replay: 1000 records read, 10 matched, 0 decode failures in 0.5 s (2000 records/s)"
        );
    }

    #[test]
    fn failures_and_early_stops_are_spelled_out() {
        let summary = Summary {
            read: 3,
            matched: 2,
            failed: 1,
            first_failure: Some("partition 0 offset 4: not Avro".into()),
            elapsed: Duration::ZERO,
            stopped_early: Some("interrupted"),
        };
        let text = summary.to_string();
        assert!(
            text.contains("0 records/s); stopped early: interrupted"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "1 records could not be decoded; the first: partition 0 offset 4: not Avro"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_hidden_bar_when_not_forced_and_not_at_a_terminal() {
        // Test runs capture stderr, so it is no terminal here.
        if !std::io::stderr().is_terminal() {
            assert!(bar(10, false).is_hidden());
            assert!(!bar(10, true).is_hidden());
        }
    }
}
