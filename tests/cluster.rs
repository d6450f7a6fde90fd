//! Preemption and time limits, end to end with the real `mpq`:
//! - a run sent SIGTERM in the middle of its search stops at its journal with exit code 75
//!   (nothing half-written, its lock released) and, run again, resumes to the tables of an
//!   uninterrupted run;
//! - on the project's single-node Slurm (tools/slurm/cluster.sh; skipped with one line where
//!   the packages cannot be installed), a job array of two embedded manifests, one task requeued
//!   mid-run by `scontrol requeue` and the other told mid-run that its time limit is near (the
//!   USR1 of `--signal=B:USR1@N`, so it requeues itself), ends with the same tables as local
//!   runs.
mod common;
use common::*;
use mpq_cluster::local::LocalCluster;
use mpq_cluster::script::{task_log_path, TaskLog};
use mpq_cluster::{ArrayJob, Resources, Task, TaskState};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MANIFESTS: [&str; 2] = [
    "experiments/embedded/resnet-tiny-w4a8-greedy.toml",
    "experiments/embedded/resnet-tiny-w4a4-greedy.toml",
];

/// The overrides of every run here: the small slice of the embedded data of the other
/// end-to-end tests, one evaluation at a time (so the journal grows steadily).
fn sets(results: &Path) -> Vec<String> {
    vec![
        format!("runtime.results_dir={}", results.display()),
        "data.search_images=64".into(),
        "data.calib_images=32".into(),
        "runtime.parallel=false".into(),
    ]
}

fn spawn_run(manifest: &str, results: &Path) -> Child {
    let mut args = vec!["run".to_string(), manifest.into(), "--quiet".into()];
    for s in sets(results) {
        args.extend(["--set".into(), s]);
    }
    Command::new(env!("CARGO_BIN_EXE_mpq"))
        .args(&args)
        .current_dir(root())
        .env_remove("RAYON_NUM_THREADS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn experiment(manifest: &str) -> &str {
    Path::new(manifest).file_stem().unwrap().to_str().unwrap()
}

/// Lines of the journal (header included) of the run directories of `experiment`.
fn journal_lines(results: &Path, experiment: &str) -> usize {
    let Ok(rd) = std::fs::read_dir(results.join(experiment)) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("journal.log")).ok())
        .map(|t| t.lines().count())
        .sum()
}

fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The steps and candidates of the only run of `experiment`, without run ids and timings.
fn tables(results: &Path, experiment: &str) -> (DataFrame, DataFrame) {
    let dir = single_run_dir(results, experiment);
    let read =
        |t: &str| mpq_runner::store::read_parquet(&dir.join(format!("{t}.parquet"))).unwrap();
    let steps = read("steps").drop_many(["run_id", "elapsed_s"]);
    let cands = read("candidates").drop("run_id").unwrap();
    (steps, cands)
}

fn evals_replayed(results: &Path, experiment: &str) -> u64 {
    let dir = single_run_dir(results, experiment);
    let runs = mpq_runner::store::read_parquet(&dir.join("runs.parquet")).unwrap();
    first_u64(&runs, "evals_replayed").unwrap()
}

fn assert_same_tables(a: &Path, b: &Path, experiment: &str) {
    let (s1, c1) = tables(a, experiment);
    let (s2, c2) = tables(b, experiment);
    assert_eq!(s1.height(), 17, "{experiment}");
    assert!(s1.equals_missing(&s2), "{experiment} steps\n{s1}\n{s2}");
    assert!(c1.equals_missing(&c2), "{experiment} candidates");
}

#[test]
fn interrupted_runs_resume_locally_and_on_slurm() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");

    // The uninterrupted runs, side by side.
    let t = Instant::now();
    let whole: Vec<Child> = MANIFESTS.iter().map(|m| spawn_run(m, &local)).collect();
    for c in whole {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    eprintln!(
        "two local runs side by side: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // SIGTERM in the middle of the search: a clean stop at the journal, exit code 75.
    let stopped = tmp.path().join("stopped");
    let exp = experiment(MANIFESTS[0]);
    let child = spawn_run(MANIFESTS[0], &stopped);
    until("25 journaled evaluations", Duration::from_secs(600), || {
        journal_lines(&stopped, exp) > 25
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("stopped at the journal on SIGTERM; run the same manifest again to resume"),
        "{said}"
    );
    let dir = single_run_dir(&stopped, exp);
    assert!(!dir.join("runs.parquet").exists());
    assert!(!dir.join("steps.parquet").exists());
    assert!(
        !dir.join(mpq_runner::store::LOCK_FILE).exists(),
        "the lock is released"
    );
    let journaled = journal_lines(&stopped, exp) - 1;
    let out = spawn_run(MANIFESTS[0], &stopped)
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(evals_replayed(&stopped, exp), journaled as u64);
    assert_same_tables(&local, &stopped, exp);

    // The same on Slurm, both ways a cluster stops a task.
    let Some(cluster) = LocalCluster::up(&root().join("tools/slurm/cluster.sh")).unwrap() else {
        eprintln!("skipped the Slurm part: no Slurm (the line above says why)");
        return;
    };
    let slurm = cluster.slurm();
    let results = tmp.path().join("slurm-results");
    let job = ArrayJob {
        name: "mpq-test".into(),
        dir: tmp.path().join("submission"),
        workdir: root(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_mpq")),
        sets: sets(&results),
        tasks: MANIFESTS
            .iter()
            .map(|m| Task {
                manifest: m.into(),
                sets: vec![],
            })
            .collect(),
        resources: Resources {
            cpus: 1,
            ..Resources::default()
        },
    };
    let t = Instant::now();
    let id = slurm.submit(&job.write().unwrap()).unwrap();
    let (e0, e1) = (experiment(MANIFESTS[0]), experiment(MANIFESTS[1]));
    until(
        "task 0 to journal 25 evaluations",
        Duration::from_secs(600),
        || journal_lines(&results, e0) > 25,
    );
    slurm.requeue(id, 0).unwrap();
    until(
        "task 1 to journal 25 evaluations",
        Duration::from_secs(600),
        || journal_lines(&results, e1) > 25,
    );
    slurm.signal_batch(id, 1, "USR1").unwrap();
    let end = slurm
        .wait(
            id,
            2,
            Duration::from_secs(1),
            Some(Duration::from_secs(900)),
            &mut |s| eprintln!("{}", mpq_cluster::slurm::summary(s)),
        )
        .unwrap();
    eprintln!(
        "Slurm array of 2 tasks, both interrupted and resumed: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let logs: Vec<String> = (0..2)
        .map(|task| std::fs::read_to_string(task_log_path(&job.dir, id, task)).unwrap_or_default())
        .collect();
    assert!(
        end.iter().all(|t| t.state == TaskState::Completed),
        "{end:?}\n{}",
        logs.join("\n")
    );
    for (task, log) in logs.iter().enumerate() {
        let l = TaskLog::parse(log);
        assert_eq!(l.attempts, 2, "{log}");
        assert_eq!(l.last_end.unwrap().action, "done", "{log}");
        let exp = experiment(MANIFESTS[task]);
        assert!(
            evals_replayed(&results, exp) >= 25,
            "resumed from the journal: {log}"
        );
        assert_same_tables(&local, &results, exp);
    }
    assert!(logs[0].contains("action=stop reason=stopped at the journal on SIGTERM"));
    assert!(logs[1].contains("action=requeue reason=time limit near"));
    drop(cluster);
}
