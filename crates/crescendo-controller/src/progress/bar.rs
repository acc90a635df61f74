//! The live display on a terminal: a bar over the plan's duration carrying the stage
//! line, then three more lines (see [`super::bar_lines`]), redrawn once a second.
//! indicatif hides itself when the output is not a terminal, and nothing here can panic
//! on a weird one: a template that fails to parse falls back to indicatif's default
//! style.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Tick, bar_lines};

/// The bars of one run's display.
#[derive(Debug)]
pub(super) struct Display {
    // Kept so the bars stay drawn together.
    _multi: MultiProgress,
    head: ProgressBar,
    lines: Vec<ProgressBar>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Display {
    /// A display for a load of `total` (the bar counts milliseconds).
    pub(super) fn new(total: Duration) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let length = u64::try_from(total.as_millis()).unwrap_or(u64::MAX).max(1);
        let head = multi.add(ProgressBar::new(length));
        head.set_style(
            style("{spinner} [{bar:40.cyan/blue}] {percent:>3}%  {msg}").tick_chars("⠁⠂⠄⡀⢀⠠⠐⠈ "),
        );
        head.set_message("starting");
        let lines = (0..3)
            .map(|_| {
                let line = multi.add(ProgressBar::new_spinner());
                line.set_style(style("  {msg}"));
                line
            })
            .collect();
        Self {
            _multi: multi,
            head,
            lines,
        }
    }

    /// Redraw with `tick`.
    pub(super) fn update(&self, tick: &Tick) {
        let [first, rest @ ..] = bar_lines(tick);
        // Past the load's end (the drain), the bar stays full.
        let length = self.head.length().unwrap_or(u64::MAX);
        self.head.set_position(
            ((tick.elapsed_s * 1000.0).clamp(0.0, u64::MAX as f64) as u64).min(length),
        );
        self.head.set_message(first);
        for (bar, text) in self.lines.iter().zip(rest) {
            bar.set_message(text);
        }
        self.head.tick();
    }

    /// What the bars hold now, drawn or not: the bar's position and length (ms), its
    /// text and each line's, and whether indicatif hides it (off a terminal).
    #[cfg(test)]
    pub(super) fn shown(&self) -> (u64, Option<u64>, Vec<String>, bool) {
        let texts = std::iter::once(&self.head)
            .chain(&self.lines)
            .map(ProgressBar::message)
            .collect();
        (
            self.head.position(),
            self.head.length(),
            texts,
            self.head.is_hidden(),
        )
    }
}

impl Drop for Display {
    /// Leave the last state on screen, with the cursor on the line below it.
    fn drop(&mut self) {
        self.head.abandon();
        for line in &self.lines {
            line.abandon();
        }
        // indicatif leaves the cursor at the end of the last line (and draws nothing,
        // so needs no newline, off a terminal).
        if std::io::stdout().is_terminal() {
            println!();
        }
    }
}
