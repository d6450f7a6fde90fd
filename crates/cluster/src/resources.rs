//! What one array task asks the cluster for: the `[resources]` of a manifest (suite defaults in
//! `defaults.toml`, overrides on the command line), typed and checked, so that a bad value is a
//! one-line error naming its key before anything is submitted, and nothing a user writes can
//! add a line to the generated batch script.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Resources of each task of a job array (`#SBATCH` options) and how the task is restarted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// `--partition`; none: the cluster's default partition.
    pub partition: Option<String>,
    /// GPUs per task (`--gres=gpu:N`); 0: none.
    pub gpus: u32,
    /// CPUs per task (`--cpus-per-task`, also the run's `runtime.threads`); 0: Slurm's default
    /// (and `runtime.threads` the CPUs Slurm gave the task).
    pub cpus: u32,
    /// Memory per task (`--mem`): MiB as a number, or a string with a K, M, G or T suffix.
    pub mem: Option<MemSize>,
    /// Time limit per task (`--time`): minutes as a number, or one of Slurm's formats
    /// (`MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`, `UNLIMITED`).
    pub time: Option<TimeLimit>,
    /// `--account`.
    pub account: Option<String>,
    /// Seconds before the time limit at which the task is told to stop at its journal and
    /// requeue itself (`--signal=B:USR1@N`). Longer than one evaluation chunk takes.
    pub signal_before_s: u32,
    /// How many times a task requeues itself before its time limit before it gives up
    /// (`SLURM_RESTART_COUNT` counts every requeue, preemptions included).
    pub max_restarts: u32,
    /// At most this many tasks of the array at once (`--array=...%N`); 0: no limit.
    pub max_parallel: u32,
    /// Further `#SBATCH` options, one each, e.g. `--constraint=a100` or `--qos=long`.
    pub extra: Vec<String>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            partition: None,
            gpus: 0,
            cpus: 0,
            mem: None,
            time: None,
            account: None,
            signal_before_s: 300,
            max_restarts: 10,
            max_parallel: 0,
            extra: vec![],
        }
    }
}

/// A bad `[resources]` value: `resources.<key>: <message>` (one line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("resources.{key}: {message}")]
pub struct ResourceError {
    pub key: &'static str,
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> ResourceError {
    ResourceError {
        key,
        message: message.into(),
    }
}

/// Options the batch script sets itself; `extra` may not repeat them.
const OWN_OPTIONS: [&str; 12] = [
    "--array",
    "--output",
    "--error",
    "--open-mode",
    "--requeue",
    "--no-requeue",
    "--signal",
    "--chdir",
    "--job-name",
    "--parsable",
    "--wrap",
    "--ntasks",
];

/// Options with a key of their own in `[resources]`.
const TYPED_OPTIONS: [(&str, &str); 7] = [
    ("--partition", "partition"),
    ("--gres", "gpus"),
    ("--gpus", "gpus"),
    ("--cpus-per-task", "cpus"),
    ("--mem", "mem"),
    ("--time", "time"),
    ("--account", "account"),
];

/// A name Slurm takes as one word: printable, no whitespace, no quote, not an option.
fn check_word(key: &'static str, v: &str) -> Result<(), ResourceError> {
    if v.is_empty() {
        return Err(err(key, "empty"));
    }
    if v.starts_with('-')
        || v.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'\\#".contains(c))
    {
        return Err(err(
            key,
            format!("{v:?} is not a plain name (no whitespace, quotes, '#' or leading '-')"),
        ));
    }
    Ok(())
}

impl Resources {
    /// Checks every value; the first bad one is the error.
    pub fn check(&self) -> Result<(), ResourceError> {
        if let Some(p) = &self.partition {
            check_word("partition", p)?;
        }
        if let Some(a) = &self.account {
            check_word("account", a)?;
        }
        if let Some(TimeLimit::Seconds(t)) = self.time {
            if u64::from(self.signal_before_s) >= t {
                return Err(err(
                    "signal_before_s",
                    format!(
                        "{} s is not shorter than the time limit ({})",
                        self.signal_before_s,
                        TimeLimit::Seconds(t)
                    ),
                ));
            }
        }
        for o in &self.extra {
            if o.chars().any(char::is_control) {
                return Err(err(
                    "extra",
                    format!("{o:?}: control characters (a newline) are not allowed"),
                ));
            }
            if !o.starts_with('-') || o.trim() != o || o == "-" || o == "--" {
                return Err(err(
                    "extra",
                    format!("{o:?} is not an sbatch option (e.g. \"--constraint=a100\")"),
                ));
            }
            let name = o.split(['=', ' ']).next().unwrap_or(o);
            if OWN_OPTIONS.contains(&name) {
                return Err(err("extra", format!("{name} is set by mpq's batch script")));
            }
            if let Some((_, key)) = TYPED_OPTIONS.iter().find(|(n, _)| *n == name) {
                return Err(err("extra", format!("{name}: use resources.{key}")));
            }
        }
        Ok(())
    }

    /// The `#SBATCH` options of these resources (without the script's own ones), in a fixed
    /// order. Call [`Resources::check`] first.
    pub fn sbatch_options(&self) -> Vec<String> {
        let mut v = vec![];
        if let Some(p) = &self.partition {
            v.push(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            v.push(format!("--account={a}"));
        }
        if self.cpus > 0 {
            v.push(format!("--cpus-per-task={}", self.cpus));
        }
        if self.gpus > 0 {
            v.push(format!("--gres=gpu:{}", self.gpus));
        }
        if let Some(m) = &self.mem {
            v.push(format!("--mem={m}"));
        }
        if let Some(t) = &self.time {
            v.push(format!("--time={t}"));
        }
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// A Slurm time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeLimit {
    Unlimited,
    Seconds(u64),
}

impl TimeLimit {
    /// Parses Slurm's formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, `UNLIMITED` or
    /// `INFINITE` (and `0`, Slurm's "no limit").
    pub fn parse(s: &str) -> Result<TimeLimit, String> {
        let bad = || {
            format!(
                "{s:?} is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)"
            )
        };
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
            return Ok(TimeLimit::Unlimited);
        }
        let num = |p: &str| -> Result<u64, String> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u64>().map_err(|_| bad())
        };
        let below = |v: u64, max: u64| if v < max { Ok(v) } else { Err(bad()) };
        let secs = match t.split_once('-') {
            Some((d, rest)) => {
                let d = num(d)?;
                let f: Vec<&str> = rest.split(':').collect();
                let (h, m, sec) = match f.as_slice() {
                    [h] => (num(h)?, 0, 0),
                    [h, m] => (num(h)?, num(m)?, 0),
                    [h, m, s] => (num(h)?, num(m)?, num(s)?),
                    _ => return Err(bad()),
                };
                d * 86400 + below(h, 24)? * 3600 + below(m, 60)? * 60 + below(sec, 60)?
            }
            None => {
                let f: Vec<&str> = t.split(':').collect();
                match f.as_slice() {
                    [m] => num(m)? * 60,
                    [m, s] => num(m)? * 60 + below(num(s)?, 60)?,
                    [h, m, s] => num(h)? * 3600 + below(num(m)?, 60)? * 60 + below(num(s)?, 60)?,
                    _ => return Err(bad()),
                }
            }
        };
        Ok(if secs == 0 {
            TimeLimit::Unlimited
        } else {
            TimeLimit::Seconds(secs)
        })
    }
}

impl fmt::Display for TimeLimit {
    /// `D-HH:MM:SS` (`HH:MM:SS` under a day), or `UNLIMITED`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            TimeLimit::Unlimited => write!(f, "UNLIMITED"),
            TimeLimit::Seconds(s) => {
                let (d, h, m, s) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
                if d > 0 {
                    write!(f, "{d}-{h:02}:{m:02}:{s:02}")
                } else {
                    write!(f, "{h:02}:{m:02}:{s:02}")
                }
            }
        }
    }
}

/// A number (of minutes, of MiB) or a string, as TOML and `--set` give them.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(i64),
    Str(String),
}

impl Serialize for TimeLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl NumOrStr {
    /// A non-negative number as its digits, or the string, through `parse`.
    fn deserialize_with<'de, D: serde::Deserializer<'de>, T>(
        d: D,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<T, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) if n >= 0 => parse(&n.to_string()),
            NumOrStr::Num(n) => Err(format!("{n} is negative")),
            NumOrStr::Str(s) => parse(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for TimeLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NumOrStr::deserialize_with(d, TimeLimit::parse)
    }
}

/// Memory per task as Slurm's `--mem` takes it: a count and a unit (K, M, G or T; 0 = all of
/// the node's memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemSize {
    pub amount: u64,
    pub unit: MemUnit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemUnit {
    K,
    M,
    G,
    T,
}

impl MemSize {
    pub fn parse(s: &str) -> Result<MemSize, String> {
        let t = s.trim();
        let bad =
            || format!("{s:?} is not a memory size (MiB as a number, or e.g. \"16G\", \"512M\")");
        let (digits, unit) = match t.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (
                &t[..i],
                match c.to_ascii_uppercase() {
                    'K' => MemUnit::K,
                    'M' => MemUnit::M,
                    'G' => MemUnit::G,
                    'T' => MemUnit::T,
                    _ => return Err(bad()),
                },
            ),
            _ => (t, MemUnit::M),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(MemSize {
            amount: digits.parse().map_err(|_| bad())?,
            unit,
        })
    }
}

impl fmt::Display for MemSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let u = match self.unit {
            MemUnit::K => 'K',
            MemUnit::M => 'M',
            MemUnit::G => 'G',
            MemUnit::T => 'T',
        };
        write!(f, "{}{u}", self.amount)
    }
}

impl Serialize for MemSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for MemSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NumOrStr::deserialize_with(d, MemSize::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Serialized, Toml};
    use figment::Figment;

    #[test]
    fn time_limits_in_slurms_formats() {
        let s = |t: &str| TimeLimit::parse(t).map(|t| t.to_string());
        assert_eq!(s("30").unwrap(), "00:30:00");
        assert_eq!(s("90").unwrap(), "01:30:00");
        assert_eq!(s("5:30").unwrap(), "00:05:30");
        assert_eq!(s("2:00:00").unwrap(), "02:00:00");
        assert_eq!(s("1-0").unwrap(), "1-00:00:00");
        assert_eq!(s("1-12:30").unwrap(), "1-12:30:00");
        assert_eq!(s("2-03:04:05").unwrap(), "2-03:04:05");
        assert_eq!(s("UNLIMITED").unwrap(), "UNLIMITED");
        assert_eq!(s("infinite").unwrap(), "UNLIMITED");
        assert_eq!(s("0").unwrap(), "UNLIMITED");
        for bad in [
            "", "1h", "-5", "1:60", "1:2:3:4", "1-24", "1-2:60", "a-1", "1:-1", "１",
        ] {
            let e = TimeLimit::parse(bad).unwrap_err();
            assert!(e.contains("not a Slurm time limit"), "{bad}: {e}");
        }
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(MemSize::parse("16G").unwrap().to_string(), "16G");
        assert_eq!(MemSize::parse("512").unwrap().to_string(), "512M");
        assert_eq!(MemSize::parse("100k").unwrap().to_string(), "100K");
        for bad in ["", "G", "1.5G", "16GB", "-1", "16 G"] {
            assert!(MemSize::parse(bad).is_err(), "{bad}");
        }
    }

    /// Deserialized as the manifest loader will: defaults, a TOML section, `--set`-like
    /// overrides, through figment; errors name the key.
    #[test]
    fn deserializes_through_figment() {
        let toml = r#"
            [resources]
            partition = "gpu"
            gpus = 1
            cpus = 8
            mem = "32G"
            time = "1-00:00:00"
            extra = ["--constraint=a100"]
        "#;
        #[derive(Default, serde::Serialize, serde::Deserialize)]
        struct Manifest {
            resources: Resources,
        }
        // As `--set resources.time=90` and `MPQ_RESOURCES__MEM=4096` arrive: dotted keys.
        let fig = Figment::from(Serialized::defaults(Manifest::default()))
            .merge(Toml::string(toml))
            .merge(Serialized::default("resources.time", 90))
            .merge(Serialized::default("resources.mem", 4096));
        let r = fig.extract::<Manifest>().unwrap().resources;
        r.check().unwrap();
        assert_eq!(r.partition.as_deref(), Some("gpu"));
        assert_eq!(r.time, Some(TimeLimit::Seconds(90 * 60)));
        assert_eq!(
            r.sbatch_options(),
            [
                "--partition=gpu",
                "--cpus-per-task=8",
                "--gres=gpu:1",
                "--mem=4096M",
                "--time=01:30:00",
                "--constraint=a100"
            ]
        );
        // Round trip: what the resolved manifest records reads back the same.
        let again: Resources = toml::from_str(&toml::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);

        let bad = |t: &str| {
            Figment::from(Serialized::defaults(Resources::default()))
                .merge(Toml::string(t))
                .extract::<Resources>()
                .unwrap_err()
                .to_string()
        };
        assert!(bad("gpus = -1").contains("gpus"), "{}", bad("gpus = -1"));
        assert!(bad("time = \"2h\"").contains("not a Slurm time limit"));
        assert!(bad("nodes = 2").contains("nodes"));
    }

    #[test]
    fn checks_name_the_key() {
        let with = |f: &dyn Fn(&mut Resources)| {
            let mut r = Resources::default();
            f(&mut r);
            r.check().map_err(|e| e.to_string())
        };
        assert!(with(&|_| {}).is_ok());
        let e = with(&|r| r.extra = vec!["--qos=long\n#SBATCH --wrap=rm".into()]).unwrap_err();
        assert!(
            e.starts_with("resources.extra: ") && e.contains("newline"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = with(&|r| r.extra = vec!["--array=0-99".into()]).unwrap_err();
        assert_eq!(e, "resources.extra: --array is set by mpq's batch script");
        let e = with(&|r| r.extra = vec!["--time=10".into()]).unwrap_err();
        assert_eq!(e, "resources.extra: --time: use resources.time");
        let e = with(&|r| r.extra = vec!["constraint=a100".into()]).unwrap_err();
        assert!(e.contains("not an sbatch option"), "{e}");
        let e = with(&|r| r.partition = Some("gpu debug".into())).unwrap_err();
        assert!(e.starts_with("resources.partition: "), "{e}");
        let e = with(&|r| r.account = Some("--wrap".into())).unwrap_err();
        assert!(e.starts_with("resources.account: "), "{e}");
        let e = with(&|r| {
            r.time = Some(TimeLimit::Seconds(240));
            r.signal_before_s = 300;
        })
        .unwrap_err();
        assert_eq!(
            e,
            "resources.signal_before_s: 300 s is not shorter than the time limit (00:04:00)"
        );
    }
}
