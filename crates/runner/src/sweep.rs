//! Sweeps: `--sweep key=v1,v2,...` (repeatable) expands into the cartesian product of `--set`
//! lists, each point an ordinary run of the manifest with its own resolved manifest and its
//! own experiment name (`<name>--beta=0.02`), so that its runs, its reuse by `reproduce` and
//! its rows in the result tables are those of any other manifest.
//!
//! Order is stable: the first `--sweep` varies slowest, values in the order given.
use std::fmt;

/// A bad `--sweep`: one line naming it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--sweep {arg:?}: {message}")]
pub struct SweepError {
    pub arg: String,
    pub message: String,
}

/// One `--sweep key=v1,v2,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    pub key: String,
    /// Each value as `--set` takes it (a TOML value, or a bare string).
    pub values: Vec<String>,
}

/// One point of a sweep: a value for each swept key, in the order of the `--sweep`s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Point {
    pub values: Vec<(String, String)>,
}

impl Point {
    /// The point as `--set key=value` arguments (after the user's own `--set`s).
    pub fn sets(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.sets().join(" "))
    }
}

/// Splits at commas outside brackets, braces and quotes, so that a value may be a TOML
/// array (`search.layers=[0,2],[1,3]`) or a string with a comma.
fn split_values(s: &str) -> Option<Vec<String>> {
    let (mut out, mut cur) = (vec![], String::new());
    let (mut depth, mut quote) = (0i32, None::<char>);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
        cur.push(c);
    }
    if quote.is_some() || depth != 0 {
        return None;
    }
    out.push(cur);
    Some(out.into_iter().map(|v| v.trim().to_string()).collect())
}

/// Parses one `--sweep key=v1,v2,...`.
pub fn parse(arg: &str) -> Result<Sweep, SweepError> {
    let fail = |m: &str| SweepError {
        arg: arg.to_string(),
        message: m.to_string(),
    };
    let (key, list) = arg
        .split_once('=')
        .map(|(k, v)| (k.trim(), v))
        .filter(|(k, _)| crate::manifest::valid_key(k) && k.contains('.'))
        .ok_or_else(|| fail("expected KEY=V1,V2,..., e.g. --sweep search.beta=0,0.02"))?;
    if key == "experiment.name" {
        return Err(fail(
            "experiment.name cannot be swept: each point's name is made from it",
        ));
    }
    let values = split_values(list).ok_or_else(|| fail("unbalanced brackets or quotes"))?;
    if values.iter().any(String::is_empty) {
        return Err(fail("an empty value"));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(fail(&format!("{v} is given twice")));
        }
    }
    Ok(Sweep {
        key: key.to_string(),
        values,
    })
}

/// The points of `sweeps` (each a `--sweep` argument): their cartesian product, the first
/// varying slowest. No sweep: one point with no values (the manifest as it is). A key swept
/// twice, or also given with `--set` (`sets`), is an error.
pub fn expand(sweeps: &[String], sets: &[String]) -> Result<Vec<Point>, SweepError> {
    let mut parsed: Vec<Sweep> = vec![];
    for arg in sweeps {
        let s = parse(arg)?;
        let fail = |m: String| SweepError {
            arg: arg.clone(),
            message: m,
        };
        if parsed.iter().any(|p| p.key == s.key) {
            return Err(fail(format!("{} is swept twice", s.key)));
        }
        if sets
            .iter()
            .any(|set| set.split_once('=').is_some_and(|(k, _)| k.trim() == s.key))
        {
            return Err(fail(format!("{} is also given with --set", s.key)));
        }
        parsed.push(s);
    }
    let mut points = vec![Point { values: vec![] }];
    for s in &parsed {
        points = points
            .into_iter()
            .flat_map(|p| {
                s.values.iter().map(move |v| {
                    let mut values = p.values.clone();
                    values.push((s.key.clone(), v.clone()));
                    Point { values }
                })
            })
            .collect();
    }
    Ok(points)
}

/// A value as it appears in a name: a quoted TOML string without its quotes; characters other
/// than letters, digits, `.`, `_`, `+`, `-` become `_`.
fn name_part(v: &str) -> String {
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v);
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The experiment name of each point: `<base>--<key>=<value>...`, the key by its last part
/// (`search.beta` as `beta`) unless two swept keys share it, the value made safe for a file
/// name. Two points with the same name (values that differ only in unsafe characters), or a
/// name too long for a directory, are an error.
pub fn point_names(base: &str, points: &[Point]) -> Result<Vec<String>, SweepError> {
    let keys: Vec<&String> = points
        .first()
        .map(|p| p.values.iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let label = |k: &String| {
        let l = last(k);
        if keys.iter().filter(|o| last(o) == l).count() > 1 {
            k.clone()
        } else {
            l
        }
    };
    let mut names: Vec<String> = vec![];
    for p in points {
        let mut name = base.to_string();
        for (k, v) in &p.values {
            name.push_str(&format!("--{}={}", label(k), name_part(v)));
        }
        let fail = |m: String| SweepError {
            arg: p
                .values
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            message: m,
        };
        if name.len() > 255 {
            return Err(fail(format!(
                "the point {p} makes an experiment name of {} bytes, more than a directory name takes",
                name.len()
            )));
        }
        if let Some(i) = names.iter().position(|n| *n == name) {
            return Err(fail(format!(
                "the points {} and {p} have the same name {name:?}",
                points[i]
            )));
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cartesian_product_in_order() {
        let p = expand(
            &strs(&["search.beta=0,0.02", "quant.pair=W4A8,W6A6,W4A4"]),
            &strs(&["data.search_images=64"]),
        )
        .unwrap();
        let sets: Vec<Vec<String>> = p.iter().map(Point::sets).collect();
        assert_eq!(sets.len(), 6);
        assert_eq!(sets[0], ["search.beta=0", "quant.pair=W4A8"]);
        assert_eq!(sets[1], ["search.beta=0", "quant.pair=W6A6"]);
        assert_eq!(sets[2], ["search.beta=0", "quant.pair=W4A4"]);
        assert_eq!(sets[3], ["search.beta=0.02", "quant.pair=W4A8"]);
        assert_eq!(sets[5], ["search.beta=0.02", "quant.pair=W4A4"]);
        let names = point_names("resnet18-greedy", &p).unwrap();
        assert_eq!(names[0], "resnet18-greedy--beta=0--pair=W4A8");
        assert_eq!(names[5], "resnet18-greedy--beta=0.02--pair=W4A4");
        // No sweep: the manifest itself, under its own name.
        let one = expand(&[], &[]).unwrap();
        assert_eq!(one, [Point { values: vec![] }]);
        assert_eq!(point_names("r", &one).unwrap(), ["r"]);
    }

    #[test]
    fn values_with_commas_and_names() {
        let p = expand(
            &strs(&[r#"search.layers=[0,2],[1, 3]"#, r#"data.seed=1,"a,b""#]),
            &[],
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].sets(), ["search.layers=[0,2]", "data.seed=1"]);
        assert_eq!(p[3].sets(), ["search.layers=[1, 3]", r#"data.seed="a,b""#]);
        let names = point_names("x", &p).unwrap();
        assert_eq!(names[3], "x--layers=_1__3_--seed=a_b");
        // Same last part: the whole key.
        let p = expand(&strs(&["data.seed=1,2", "experiment.seed=3"]), &[]).unwrap();
        assert_eq!(
            point_names("x", &p).unwrap()[1],
            "x--data.seed=2--experiment.seed=3"
        );
        // A name is one path component whatever the value.
        let p = expand(&strs(&["data.path=../../etc,/abs/dir"]), &[]).unwrap();
        let names = point_names("x", &p).unwrap();
        assert_eq!(names, ["x--path=.._.._etc", "x--path=_abs_dir"]);
        assert!(names.iter().all(|n| !n.contains('/')));
    }

    #[test]
    fn errors_name_the_sweep() {
        let e = |sweeps: &[&str], sets: &[&str]| {
            expand(&strs(sweeps), &strs(sets)).unwrap_err().to_string()
        };
        assert_eq!(
            e(&["beta"], &[]),
            r#"--sweep "beta": expected KEY=V1,V2,..., e.g. --sweep search.beta=0,0.02"#
        );
        assert!(e(&["beta=0,1"], &[]).contains("expected KEY="));
        assert!(e(&["search.Beta=0"], &[]).contains("expected KEY="));
        assert_eq!(
            e(&["search.beta=0,,1"], &[]),
            r#"--sweep "search.beta=0,,1": an empty value"#
        );
        assert!(e(&["search.beta="], &[]).ends_with("an empty value"));
        assert!(e(&["search.layers=[0,1"], &[]).ends_with("unbalanced brackets or quotes"));
        assert!(e(&["search.beta=0,0"], &[]).ends_with("0 is given twice"));
        assert_eq!(
            e(&["search.beta=0", "search.beta=1"], &[]),
            r#"--sweep "search.beta=1": search.beta is swept twice"#
        );
        assert_eq!(
            e(&["search.beta=0,1"], &["search.beta=0.5"]),
            r#"--sweep "search.beta=0,1": search.beta is also given with --set"#
        );
        assert!(e(&["experiment.name=a,b"], &[]).contains("cannot be swept"));
        let p = expand(&strs(&["data.path=a b,a_b"]), &[]).unwrap();
        let n = point_names("x", &p).unwrap_err().to_string();
        assert!(n.contains("same name \"x--path=a_b\""), "{n}");
        let long = format!("data.path={}", "a".repeat(300));
        let p = expand(&[long], &[]).unwrap();
        assert!(point_names("x", &p)
            .unwrap_err()
            .to_string()
            .contains("more than a directory name"));
    }
}
