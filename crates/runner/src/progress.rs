//! The progress bar of a search: step k of N, candidate j, work done (in full-evaluation
//! equivalents) against the most the strategy can cost, and an ETA.
//! Drawn on stderr only when it is a terminal; silent otherwise (CI logs, pipes).
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpq_search::{Observer, Progress, Step};
use std::io::IsTerminal;

pub struct SearchProgress {
    bar: ProgressBar,
}

impl SearchProgress {
    /// A bar for `experiment`; its length is set by the first progress report.
    pub fn new(experiment: &str, quiet: bool) -> SearchProgress {
        let bar = ProgressBar::with_draw_target(
            None,
            if quiet || !std::io::stderr().is_terminal() {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} evaluations {msg} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(experiment.to_string());
        SearchProgress { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for SearchProgress {
    fn on_eval(&mut self, p: &Progress) {
        self.bar.set_length(p.work_max.ceil() as u64);
        self.bar.set_position(p.work_done.floor() as u64);
        self.bar.set_message(format!(
            "step {}/{} candidate {}/{}",
            p.step, p.n_steps, p.candidate, p.n_candidates
        ));
    }
    fn on_step(&mut self, _s: &Step) {}
}
