//! The progress of a sync run while the CLI waits for it, on stderr: a live spinner line on a
//! terminal, plain lines every few seconds otherwise (logs of CI jobs and cron scripts).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::output;

/// How often the plain display writes a line while the counts change.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A sync run's counters (`GET /v1/runs/{id}`), every missing one zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub pages: i64,
    pub not_modified: i64,
    pub added: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
}

impl SyncCounts {
    fn from_counters(counters: &Value) -> Self {
        let count = |name: &str| counters[name].as_i64().unwrap_or(0);
        Self {
            pages: count("pages"),
            not_modified: count("not_modified"),
            added: count("records_added"),
            updated: count("records_updated"),
            deleted: count("records_deleted"),
            unchanged: count("records_unchanged"),
        }
    }

    /// The run's counts so far: its finished attempts' totals (the run's `counters`) plus
    /// what its unfinished attempt reported.
    pub fn of_run(run: &Value) -> Self {
        let mut counts = Self::from_counters(&run["counters"]);
        let running = run["attempts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|attempt| attempt["finished_at"].is_null());
        for attempt in running {
            counts.add(Self::from_counters(&attempt["counters"]));
        }
        counts
    }

    fn add(&mut self, other: Self) {
        self.pages += other.pages;
        self.not_modified += other.not_modified;
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
    }

    /// Records added, updated or deleted.
    pub fn changed(&self) -> i64 {
        self.added + self.updated + self.deleted
    }

    /// Every record read, changed or not.
    pub fn seen(&self) -> i64 {
        self.changed() + self.unchanged
    }
}

/// Where the progress goes while the CLI waits.
pub struct SyncProgress {
    started: Instant,
    /// When the run was first seen past `queued`: the rate counts from there.
    running_since: Option<Instant>,
    /// The counts last seen and how long the run had been running then: the server updates
    /// counts about once a second, so the rate is taken when they change, not at every poll.
    last_counts: Option<(SyncCounts, Duration)>,
    display: Display,
}

enum Display {
    Live(ProgressBar),
    Plain {
        last_line: Option<Instant>,
        last: Option<(String, SyncCounts)>,
    },
}

impl SyncProgress {
    /// A live line when stderr is a terminal, plain lines otherwise.
    pub fn start(run_id: &str) -> Self {
        output::print_note(&format!("{run_id}: started"));
        let display = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The template is a constant; should it not parse, the default style still works.
            // `wide_msg` is cut to the terminal's width: a wrapped line would not redraw.
            if let Ok(style) =
                ProgressStyle::with_template("{spinner:.cyan} [{elapsed_precise}] {wide_msg}")
            {
                bar.set_style(style);
            }
            bar.set_message("queued");
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Live(bar)
        } else {
            Display::Plain {
                last_line: None,
                last: None,
            }
        };
        Self {
            started: Instant::now(),
            running_since: None,
            last_counts: None,
            display,
        }
    }

    /// Shows the run's latest state.
    pub fn update(&mut self, status: &str, counts: SyncCounts) {
        if status != "queued" && self.running_since.is_none() {
            self.running_since = Some(Instant::now());
        }
        if let Some(since) = self.running_since
            && self.last_counts.is_none_or(|(last, _)| last != counts)
        {
            self.last_counts = Some((counts, since.elapsed()));
        }
        let line = describe(status, self.last_counts);
        let elapsed = self.started.elapsed();
        match &mut self.display {
            Display::Live(bar) => bar.set_message(line),
            Display::Plain { last_line, last } => {
                let changed = last.as_ref() != Some(&(status.to_owned(), counts));
                let due = last_line.is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
                if changed && due {
                    output::print_note(&format!(
                        "[{}] {line}",
                        humantime::format_duration(whole_seconds(elapsed))
                    ));
                    *last_line = Some(Instant::now());
                    *last = Some((status.to_owned(), counts));
                }
            }
        }
    }

    /// How long the CLI has been waiting.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Removes the live line, so the summary starts on a clean line.
    pub fn finish(self) {
        if let Display::Live(bar) = self.display {
            bar.finish_and_clear();
        }
    }
}

/// `running · 12 pages · 1150 changed · 50 unchanged · 950 records/s`.
fn describe(status: &str, last_counts: Option<(SyncCounts, Duration)>) -> String {
    let Some((counts, running_for)) = last_counts else {
        return status.to_owned();
    };
    let seconds = running_for.as_secs_f64();
    let rate = if seconds > 0.0 {
        counts.seen() as f64 / seconds
    } else {
        0.0
    };
    format!(
        "{status} · {} pages · {} changed · {} unchanged · {rate:.0} records/s",
        counts.pages,
        counts.changed(),
        counts.unchanged,
    )
}

fn whole_seconds(elapsed: Duration) -> Duration {
    Duration::from_secs(elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SyncCounts;

    #[test]
    fn counts_add_the_unfinished_attempt_to_the_finished_ones() {
        let run = json!({
            "counters": {"pages": 2, "records_added": 150},
            "attempts": [
                {"finished_at": "2024-01-01T00:00:01Z", "counters": {"pages": 2, "records_added": 150}},
                {"finished_at": null, "counters": {"pages": 1, "records_added": 20, "records_unchanged": 5, "not_modified": 1}},
            ],
        });
        let counts = SyncCounts::of_run(&run);
        assert_eq!(
            counts,
            SyncCounts {
                pages: 3,
                not_modified: 1,
                added: 170,
                updated: 0,
                deleted: 0,
                unchanged: 5,
            }
        );
        assert_eq!((counts.changed(), counts.seen()), (170, 175));
    }
}
