//! The process and machine a run happens on: worker threads, the candle device, the device's
//! name for the runs table, the git commit of the working tree.
use anyhow::{Context, Result};
use candle_core::Device;
use mpq_vocab::DeviceSpec;

/// The candle device a manifest asks for.
pub fn make_device(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(i) => {
            if !cfg!(feature = "cuda") {
                anyhow::bail!("device cuda:{i} needs a build with `--features cuda`");
            }
            Device::new_cuda(i).with_context(|| format!("cannot open CUDA device {i}"))
        }
    }
}

/// A human-readable name of the device, for the runs table.
pub fn device_name(spec: DeviceSpec) -> String {
    match spec {
        DeviceSpec::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
        DeviceSpec::Cuda(_) => spec.to_string(),
    }
}

/// Use `threads` worker threads for candle and rayon (0 = all cores). Effective once per
/// process, before the first parallel operation.
///
/// `RAYON_NUM_THREADS` is always set: without it candle 0.11 looks up the CPU affinity mask in
/// /proc on every matrix product. Candle's element-wise operations run in the calling thread
/// (`CANDLE_NUM_THREADS=1`, unless set): its pool for them spins while it waits and serves one
/// caller at a time, so concurrent evaluations would queue on it, and even one evaluation at a
/// time ran 14% slower with it (docs/benchmarks.md). Matrix products still use every thread.
/// Neither setting changes a result: each output element is computed by the same arithmetic.
pub fn set_threads(threads: usize) {
    let n = if threads > 0 {
        threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    if std::env::var_os("RAYON_NUM_THREADS").is_none() || threads > 0 {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
}

/// The commit of the working tree (`+dirty` when it has uncommitted changes), if in a git
/// checkout.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut c = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        c.push_str("+dirty");
    }
    Some(c)
}
