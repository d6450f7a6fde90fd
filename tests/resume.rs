//! Resume: a run killed with SIGKILL in the middle of its search, started again, continues
//! from its journal and ends with the steps and candidates of an uninterrupted run.
mod common;
use common::*;
use polars::prelude::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MANIFEST: &str = "experiments/embedded/resnet-tiny-w4a8-greedy.toml";

fn args(results: &Path) -> Vec<String> {
    let mut a = small_run_args(MANIFEST, results);
    // One evaluation at a time, so the journal grows steadily.
    a.extend(["--set".into(), "runtime.parallel=false".into()]);
    a
}

/// The steps and candidates of the only run under `results`, without run ids and timings.
fn tables(results: &Path) -> (DataFrame, DataFrame) {
    let dir = single_run_dir(results, "resnet-tiny-w4a8-greedy");
    let read =
        |t: &str| mpq_runner::store::read_parquet(&dir.join(format!("{t}.parquet"))).unwrap();
    let steps = read("steps").drop_many(["run_id", "elapsed_s"]);
    let cands = read("candidates").drop("run_id").unwrap();
    (steps, cands)
}

/// Lines of the journal (header included) of the only run directory under `results`.
fn journal_lines(results: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(results.join("resnet-tiny-w4a8-greedy")) else {
        return 0;
    };
    rd.flatten()
        .map(|e| e.path().join("journal.log"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.lines().count())
        .sum()
}

#[test]
fn a_killed_run_resumes_to_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));

    let out = mpq(&args(&whole).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));

    // Kill the second run once 25 evaluations (step 1's 16 and part of step 2) are journaled.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpq"))
        .args(args(&killed))
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while journal_lines(&killed) < 1 + 25 {
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "the run made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let dir = single_run_dir(&killed, "resnet-tiny-w4a8-greedy");
    assert!(!dir.join("runs.parquet").exists(), "killed before the end");
    let journaled = journal_lines(&killed) - 1;
    assert!(journaled >= 25, "{journaled}");
    // An unfinished run is not a result.
    let q = mpq(&[
        "query",
        "SELECT * FROM steps",
        "--results",
        killed.to_str().unwrap(),
    ]);
    assert!(!q.status.success());
    assert!(stderr(&q).contains("no finished runs"), "{}", stderr(&q));

    let out = mpq(&args(&killed).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("({journaled} answered from the journal")),
        "{said}"
    );
    assert_eq!(
        single_run_dir(&killed, "resnet-tiny-w4a8-greedy"),
        dir,
        "the same run directory, continued"
    );
    let (s1, c1) = tables(&whole);
    let (s2, c2) = tables(&killed);
    assert_eq!(s1.height(), 17);
    assert_eq!(c1.height(), 136);
    assert!(s1.equals_missing(&s2), "steps\n{s1}\n{s2}");
    assert!(c1.equals_missing(&c2), "candidates");
    let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
    let replayed = runs.column("evals_replayed").unwrap().u64().unwrap().get(0);
    assert_eq!(replayed, Some(journaled as u64));
}
