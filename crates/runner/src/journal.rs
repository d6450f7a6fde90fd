//! Resume: every evaluation a search makes is appended to a journal beside the run, and a run
//! started again answers the evaluations it already made from the journal. Searches are
//! deterministic functions of their evaluations, so a resumed search fast-forwards through the
//! journaled ones and ends with exactly the steps and candidates of an uninterrupted run
//! (timings aside), whatever point it was killed at. [`Journaled`] is the evaluator wrapper
//! that does it: every evaluation appended to disk before it is used, an evaluation already in
//! the journal answered from it.
//!
//! Format: a text file, one evaluation per line, appended and synced (`fdatasync`) before the
//! evaluation is used:
//! ```text
//! mpq-journal 1
//! a <mask> <top-1 as the hex bits of an f64> <checksum>
//! c <mask> <first part>-<end part> <correct> <total> <checksum>
//! ```
//! `<mask>` is the configuration, layer `i` = bit `i`, as hex bytes (least significant layer
//! first). The checksum (FNV-1a, 64 bits, hex) covers the line before it. A line that does not
//! end in a newline, does not parse or fails its checksum is where the journal ends: a kill in
//! the middle of a write leaves at most one such line, which is cut off on reopening, so a torn
//! write is never read as a result.
use anyhow::{bail, Context, Result};
use mpq_io::{hex, unhex};
use mpq_search::{Count, Evaluator};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

const HEADER: &str = "mpq-journal 1\n";

/// A journaled evaluation's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Entry {
    /// Top-1 on all search images.
    Accuracy(f64),
    /// Correct answers and images on a range of parts.
    Count { correct: u64, total: u64 },
}

/// What an entry is about: a configuration, on all images (`parts: None`) or on a range of
/// parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub mask: Vec<u8>,
    pub parts: Option<(usize, usize)>,
}

impl Key {
    pub fn accuracy(low: &[bool]) -> Key {
        Key {
            mask: pack(low),
            parts: None,
        }
    }
    pub fn count(low: &[bool], parts: std::ops::Range<usize>) -> Key {
        Key {
            mask: pack(low),
            parts: Some((parts.start, parts.end)),
        }
    }
}

/// Layer `i` = bit `i % 8` of byte `i / 8`.
fn pack(low: &[bool]) -> Vec<u8> {
    let mut v = vec![0u8; low.len().div_ceil(8)];
    for (i, &l) in low.iter().enumerate() {
        if l {
            v[i / 8] |= 1 << (i % 8);
        }
    }
    v
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn format_line(key: &Key, e: &Entry) -> String {
    let body = match (key.parts, e) {
        (None, Entry::Accuracy(a)) => format!("a {} {:016x}", hex(&key.mask), a.to_bits()),
        (Some((s, t)), Entry::Count { correct, total }) => {
            format!("c {} {s}-{t} {correct} {total}", hex(&key.mask))
        }
        _ => unreachable!("accuracy entries have no parts, counts have"),
    };
    format!("{body} {:016x}\n", fnv1a(&body))
}

/// Parses one complete line (without its newline).
fn parse_line(line: &str) -> Option<(Key, Entry)> {
    let (body, sum) = line.rsplit_once(' ')?;
    if sum.len() != 16 || u64::from_str_radix(sum, 16).ok()? != fnv1a(body) {
        return None;
    }
    let f: Vec<&str> = body.split(' ').collect();
    match f.as_slice() {
        ["a", mask, bits] if bits.len() == 16 => Some((
            Key {
                mask: unhex(mask)?,
                parts: None,
            },
            Entry::Accuracy(f64::from_bits(u64::from_str_radix(bits, 16).ok()?)),
        )),
        ["c", mask, range, correct, total] => {
            let (s, t) = range.split_once('-')?;
            Some((
                Key {
                    mask: unhex(mask)?,
                    parts: Some((s.parse().ok()?, t.parse().ok()?)),
                },
                Entry::Count {
                    correct: correct.parse().ok()?,
                    total: total.parse().ok()?,
                },
            ))
        }
        _ => None,
    }
}

/// The valid entries of the journal at `path` (none if it does not exist) and the length of
/// its valid part (0: not even the header), reading only.
fn read_entries(path: &Path) -> Result<(Vec<(Key, Entry)>, usize)> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut entries = vec![];
    let mut valid_end = 0usize;
    if !text.is_empty() {
        if !text.starts_with(HEADER.as_bytes()) {
            if HEADER.as_bytes().starts_with(&text) {
                // A header cut short: nothing was journaled yet.
            } else {
                bail!("{}: not an mpq journal", path.display());
            }
        } else {
            valid_end = HEADER.len();
            let mut pos = HEADER.len();
            while let Some(nl) = text[pos..].iter().position(|&b| b == b'\n') {
                let line = std::str::from_utf8(&text[pos..pos + nl]).ok();
                match line.and_then(parse_line) {
                    Some(ke) => {
                        entries.push(ke);
                        pos += nl + 1;
                        valid_end = pos;
                    }
                    None => break,
                }
            }
        }
    }
    Ok((entries, valid_end))
}

/// How far a run's search has got, from its journal (read without touching it, so a running
/// search may be watched).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Configurations journaled (each counted once, whatever parts of the images).
    pub configurations: usize,
    /// The most layers at the low pair in a journaled configuration: the step a greedy-like
    /// search is at (its step-k candidates have k layers at the low pair).
    pub step: usize,
}

/// The progress recorded in the journal at `path`.
pub fn progress(path: &Path) -> Result<Progress> {
    let (entries, _) = read_entries(path)?;
    let masks: std::collections::HashSet<&Vec<u8>> = entries.iter().map(|(k, _)| &k.mask).collect();
    Ok(Progress {
        configurations: masks.len(),
        step: masks
            .iter()
            .map(|m| m.iter().map(|b| b.count_ones() as usize).sum())
            .max()
            .unwrap_or(0),
    })
}

/// An open journal: the entries read back, and the file appended to.
pub struct Journal {
    path: PathBuf,
    file: File,
    entries: HashMap<Key, Entry>,
    /// Entries read back when the journal was opened.
    pub replayed: usize,
}

impl Journal {
    /// Opens (creating it if needed) the journal at `path`, reads back its valid entries and
    /// cuts off a torn last line.
    pub fn open(path: &Path) -> Result<Journal> {
        let (entries, valid_end) = read_entries(path)?;
        let entries: HashMap<Key, Entry> = entries.into_iter().collect();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.set_len(valid_end as u64)
            .with_context(|| format!("truncating {}", path.display()))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))?;
        if valid_end == 0 {
            file.write_all(HEADER.as_bytes())?;
            file.sync_data()?;
        }
        let replayed = entries.len();
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            entries,
            replayed,
        })
    }

    pub fn get(&self, key: &Key) -> Option<Entry> {
        self.entries.get(key).copied()
    }

    /// Appends an entry and syncs it to disk before returning.
    pub fn put(&mut self, key: Key, entry: Entry) -> Result<()> {
        let line = format_line(&key, &entry);
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.entries.insert(key, entry);
        Ok(())
    }

    /// Entries held (read back and appended).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why a journaled evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournaledError<E: std::error::Error + Send + Sync + 'static> {
    #[error(transparent)]
    Eval(E),
    #[error("{0:#}")]
    Journal(anyhow::Error),
    /// A signal asked the run to stop (`crate::interrupt`); the journal has every evaluation.
    #[error(transparent)]
    Interrupted(crate::interrupt::Interrupted),
}

/// An evaluator whose evaluations go through a journal (see the module documentation).
pub struct Journaled<'j, E> {
    pub inner: E,
    journal: &'j mut Journal,
    /// Evaluations answered from the journal.
    pub hits: usize,
}

impl<'j, E: Evaluator> Journaled<'j, E> {
    pub fn new(inner: E, journal: &'j mut Journal) -> Self {
        Journaled {
            inner,
            journal,
            hits: 0,
        }
    }

    /// The journaled answers for `keys`, evaluating the missing ones with `eval` in one call
    /// and journaling them; `None` (nothing journaled) when `eval` cannot answer.
    fn through<T: Copy>(
        &mut self,
        keys: Vec<Key>,
        from_entry: impl Fn(Entry) -> Option<T>,
        to_entry: impl Fn(T) -> Entry,
        eval: impl FnOnce(&mut E, &[usize]) -> Result<Option<Vec<T>>, E::Error>,
    ) -> Result<Option<Vec<T>>, JournaledError<E::Error>> {
        let mut out: Vec<Option<T>> = keys
            .iter()
            .map(|k| self.journal.get(k).and_then(&from_entry))
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
        self.hits += keys.len() - missing.len();
        if !missing.is_empty() {
            if let Some(stop) = crate::interrupt::requested() {
                return Err(JournaledError::Interrupted(stop));
            }
            let Some(values) = eval(&mut self.inner, &missing).map_err(JournaledError::Eval)?
            else {
                return Ok(None);
            };
            for (&i, v) in missing.iter().zip(values) {
                self.journal
                    .put(keys[i].clone(), to_entry(v))
                    .map_err(JournaledError::Journal)?;
                out[i] = Some(v);
            }
        }
        Ok(Some(out.into_iter().map(|v| v.expect("filled")).collect()))
    }
}

impl<E: Evaluator> Evaluator for Journaled<'_, E> {
    type Error = JournaledError<E::Error>;
    fn accuracy(&mut self, low: &[bool]) -> Result<f64, Self::Error> {
        Ok(self.accuracies(&[low.to_vec()])?[0])
    }
    fn accuracies(&mut self, sets: &[Vec<bool>]) -> Result<Vec<f64>, Self::Error> {
        let values = self.through(
            sets.iter().map(|s| Key::accuracy(s)).collect(),
            |e| match e {
                Entry::Accuracy(a) => Some(a),
                Entry::Count { .. } => None,
            },
            Entry::Accuracy,
            |inner, idx| {
                let sub: Vec<Vec<bool>> = idx.iter().map(|&i| sets[i].clone()).collect();
                inner.accuracies(&sub).map(Some)
            },
        )?;
        Ok(values.expect("accuracies always answer"))
    }
    fn batch_hint(&self) -> usize {
        self.inner.batch_hint()
    }
    fn commit(&mut self, low: &[bool]) -> Result<(), Self::Error> {
        self.inner.commit(low).map_err(JournaledError::Eval)
    }
    fn n_parts(&self) -> usize {
        self.inner.n_parts()
    }
    fn count(&mut self, low: &[bool], parts: Range<usize>) -> Result<Option<Count>, Self::Error> {
        Ok(self.counts(&[low.to_vec()], parts)?.map(|v| v[0]))
    }
    fn counts(
        &mut self,
        sets: &[Vec<bool>],
        parts: Range<usize>,
    ) -> Result<Option<Vec<Count>>, Self::Error> {
        self.through(
            sets.iter().map(|s| Key::count(s, parts.clone())).collect(),
            |e| match e {
                Entry::Count { correct, total } => Some(Count { correct, total }),
                Entry::Accuracy(_) => None,
            },
            |c: Count| Entry::Count {
                correct: c.correct,
                total: c.total,
            },
            |inner, idx| {
                let sub: Vec<Vec<bool>> = idx.iter().map(|&i| sets[i].clone()).collect();
                inner.counts(&sub, parts.clone())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(bits: &[usize], n: usize) -> Vec<bool> {
        (0..n).map(|i| bits.contains(&i)).collect()
    }

    #[test]
    fn progress_reads_without_touching() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("journal.log");
        assert_eq!(progress(&p).unwrap(), Progress::default());
        {
            let mut j = Journal::open(&p).unwrap();
            for (bits, parts) in [
                (&[3][..], None),
                (&[3, 9][..], Some(0..1)),
                (&[3, 9][..], Some(1..2)),
            ] {
                let low = mask(bits, 17);
                match parts {
                    None => j.put(Key::accuracy(&low), Entry::Accuracy(0.5)),
                    Some(r) => j.put(
                        Key::count(&low, r),
                        Entry::Count {
                            correct: 1,
                            total: 2,
                        },
                    ),
                }
                .unwrap();
            }
        }
        // A torn last line (a write cut short) is not read, and not cut off either.
        let mut text = std::fs::read(&p).unwrap();
        text.extend_from_slice(b"a 0f");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(
            progress(&p).unwrap(),
            Progress {
                configurations: 2,
                step: 2
            }
        );
        assert_eq!(std::fs::read(&p).unwrap(), text);
    }

    #[test]
    fn entries_survive_reopening_bit_for_bit() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("journal.log");
        let a = 0.1f64 + 0.2; // not a short decimal
        {
            let mut j = Journal::open(&p).unwrap();
            j.put(Key::accuracy(&mask(&[0, 9], 17)), Entry::Accuracy(a))
                .unwrap();
            j.put(
                Key::count(&mask(&[16], 17), 2..5),
                Entry::Count {
                    correct: 7,
                    total: 48,
                },
            )
            .unwrap();
        }
        let j = Journal::open(&p).unwrap();
        assert_eq!(j.replayed, 2);
        assert_eq!(
            j.get(&Key::accuracy(&mask(&[0, 9], 17))),
            Some(Entry::Accuracy(a))
        );
        assert_eq!(
            j.get(&Key::count(&mask(&[16], 17), 2..5)),
            Some(Entry::Count {
                correct: 7,
                total: 48
            })
        );
        assert_eq!(j.get(&Key::accuracy(&mask(&[16], 17))), None);
        assert_eq!(j.get(&Key::count(&mask(&[16], 17), 2..4)), None);
    }

    /// A write cut anywhere in its last line loses that line only, and the journal goes on
    /// from there.
    #[test]
    fn a_torn_last_line_is_cut_off() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("journal.log");
        {
            let mut j = Journal::open(&p).unwrap();
            j.put(Key::accuracy(&mask(&[1], 4)), Entry::Accuracy(0.5))
                .unwrap();
            j.put(Key::accuracy(&mask(&[2], 4)), Entry::Accuracy(0.25))
                .unwrap();
        }
        let full = std::fs::read(&p).unwrap();
        let second_line_start = full[..full.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for cut in second_line_start..full.len() {
            std::fs::write(&p, &full[..cut]).unwrap();
            let mut j = Journal::open(&p).unwrap();
            assert_eq!(j.replayed, 1, "cut at {cut}");
            assert_eq!(j.get(&Key::accuracy(&mask(&[2], 4))), None);
            j.put(Key::accuracy(&mask(&[3], 4)), Entry::Accuracy(0.75))
                .unwrap();
            drop(j);
            let j = Journal::open(&p).unwrap();
            assert_eq!(j.replayed, 2, "cut at {cut}: appended after the cut");
        }
        // A flipped digit fails the checksum.
        let mut bad = full.clone();
        let i = second_line_start + 3;
        bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
        std::fs::write(&p, &bad).unwrap();
        assert_eq!(Journal::open(&p).unwrap().replayed, 1);
        // Cut inside the header: an empty journal.
        std::fs::write(&p, &full[..5]).unwrap();
        assert_eq!(Journal::open(&p).unwrap().replayed, 0);
        std::fs::write(&p, b"something else\n").unwrap();
        assert!(Journal::open(&p).is_err());
    }
}
