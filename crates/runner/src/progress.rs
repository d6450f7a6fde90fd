//! The progress bar of a search: step k of N, candidate j, evaluations per second and ETA.
//! Drawn on stderr only when it is a terminal; silent otherwise (CI logs, pipes).
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpq_search::{Observer, Progress, Step, Strategy};
use std::io::IsTerminal;

pub struct SearchProgress {
    bar: ProgressBar,
}

impl SearchProgress {
    pub fn new(
        experiment: &str,
        strategy: Strategy,
        n_layers: usize,
        quiet: bool,
    ) -> SearchProgress {
        let total = mpq_search::evals_total(strategy, n_layers) as u64;
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if quiet || !std::io::stderr().is_terminal() {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} evals {msg} {per_sec} ETA {eta}",
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
        self.bar.set_position(p.evals_done as u64);
        self.bar.set_message(format!(
            "step {}/{} candidate {}/{}",
            p.step, p.n_steps, p.candidate, p.n_candidates
        ));
    }
    fn on_step(&mut self, _s: &Step) {}
}
