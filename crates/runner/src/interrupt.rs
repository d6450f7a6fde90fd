//! Stopping a run cleanly at its journal. A cluster stops a job with a signal: SIGTERM when
//! it preempts, requeues or cancels it (SIGKILL follows after its KillWait), SIGUSR1 when the
//! batch script asks for a warning before the time limit (`--signal=B:USR1@N`, forwarded to
//! `mpq` by the task script of the `mpq-cluster` crate). Once [`install`]ed, either signal
//! only sets a flag; the journaled evaluator looks at it before each evaluation it has to
//! compute, and the search then ends with [`Interrupted`]: every evaluation made so far is in
//! the journal, the run directory has no result tables and its lock is released, and running
//! the manifest again resumes from the journal. `mpq` exits with 75 (`EX_TEMPFAIL`,
//! `mpq_cluster::EXIT_INTERRUPTED`) on it.
//!
//! Nothing depends on the clean stop for correctness: a SIGKILL in the middle of an
//! evaluation also resumes to the same tables (the journal is synced line by line).
use signal_hook::consts::signal::{SIGTERM, SIGUSR1};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The last stop signal received, 0 for none.
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// A run stopped at its journal on a signal, resumable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stopped at the journal on {signal}; run the same manifest again to resume")]
pub struct Interrupted {
    /// `SIGTERM` or `SIGUSR1`.
    pub signal: &'static str,
}

/// From now on SIGTERM and SIGUSR1 ask the run to stop at its journal instead of ending the
/// process. Idempotent.
pub fn install() -> std::io::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            for sig in [SIGTERM, SIGUSR1] {
                signal_hook::flag::register_usize(sig, &SIGNAL, sig as usize)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .clone()
        .map_err(std::io::Error::other)
}

/// The stop asked for by a signal since [`install`], if any.
pub fn requested() -> Option<Interrupted> {
    let signal = match SIGNAL.load(Ordering::SeqCst) {
        0 => return None,
        s if s == SIGUSR1 as usize => "SIGUSR1",
        _ => "SIGTERM",
    };
    Some(Interrupted { signal })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real signal sets the flag instead of ending the test process.
    #[test]
    fn a_signal_requests_a_stop() {
        install().unwrap();
        install().unwrap();
        signal_hook::low_level::raise(SIGUSR1).unwrap();
        assert_eq!(requested(), Some(Interrupted { signal: "SIGUSR1" }));
        assert_eq!(
            requested().unwrap().to_string(),
            "stopped at the journal on SIGUSR1; run the same manifest again to resume"
        );
    }
}
