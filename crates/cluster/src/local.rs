//! The single-node test cluster of `tools/slurm/cluster.sh`, for tests: started if it is not
//! up (and then stopped again when dropped), or `None`, with one line saying why, where its
//! packages cannot be installed.
use crate::slurm::Slurm;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The script's exit code when the packages cannot be installed.
pub const EXIT_NO_PACKAGES: i32 = 3;

/// A running test cluster.
#[derive(Debug)]
pub struct LocalCluster {
    script: PathBuf,
    /// Its `slurm.conf`.
    pub conf: PathBuf,
    /// Started by this value (then stopped when it is dropped), not found running.
    started: bool,
}

impl LocalCluster {
    /// Brings the cluster of `script` (`tools/slurm/cluster.sh`) up. `Ok(None)` when its
    /// packages cannot be installed here: the script printed one line saying why.
    pub fn up(script: &Path) -> Result<Option<LocalCluster>, String> {
        let run = |arg: &str| {
            Command::new("bash")
                .arg(script)
                .arg(arg)
                .output()
                .map_err(|e| format!("{}: {e}", script.display()))
        };
        let was_up = run("status")?.status.success();
        let out = run("up")?;
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if out.status.code() == Some(EXIT_NO_PACKAGES) {
            eprintln!("{err}");
            return Ok(None);
        }
        if !out.status.success() {
            return Err(format!("{} up: {err}", script.display()));
        }
        let env = String::from_utf8_lossy(&run("env")?.stdout).to_string();
        let conf = env
            .trim()
            .strip_prefix("export SLURM_CONF=")
            .ok_or_else(|| format!("{} env: unexpected {env:?}", script.display()))?;
        Ok(Some(LocalCluster {
            script: script.to_path_buf(),
            conf: PathBuf::from(conf),
            started: !was_up,
        }))
    }

    pub fn slurm(&self) -> Slurm {
        Slurm::with_conf(&self.conf).expect("the cluster's slurm.conf")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new("bash").arg(&self.script).arg("down").output();
        }
    }
}
