//! Files and hashes, one routine each for every crate that writes or fingerprints.
//!
//! - [`AtomicFile`] / [`write_atomic`] / [`write_atomic_with`]: a file is written to a
//!   temporary file in the same directory (a dot-file, from `tempfile`, so readers that skip
//!   hidden files never see it), synced to disk, then renamed onto its name
//!   (`NamedTempFile::persist`) and the directory synced. A killed process or a failed write
//!   never leaves a half-written file under the final name, and an earlier file there stays as
//!   it was; an abandoned temporary file is removed when dropped.
//! - [`sha256_hex`] / [`Hasher`]: SHA-256 as lower-case hex, for input keys, manifests and
//!   code versions.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A file being written atomically: write (and seek) through [`AtomicFile::file`], then
/// [`AtomicFile::commit`]. Dropped uncommitted, it leaves nothing behind.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `err` with the path it concerns.
fn at(path: &Path, what: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {what}: {err}", path.display()))
}

impl AtomicFile {
    /// A new temporary file next to `path` (the directory must exist).
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        if path.file_name().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file path", path.display()),
            ));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".mpq-")
            .suffix(".tmp")
            .tempfile_in(parent_dir(path))
            .map_err(|e| at(path, "cannot create a temporary file", e))?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The temporary file, to write and seek.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Where the temporary file is, for writers that open a path themselves.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Syncs the file, renames it onto its path and syncs the directory.
    pub fn commit(self) -> io::Result<()> {
        let path = self.path;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| at(&path, "cannot sync", e))?;
        self.tmp
            .persist(&path)
            .map_err(|e| at(&path, "cannot rename into place", e.error))?;
        // Make the rename durable; best effort (not every platform opens directories).
        if let Ok(d) = File::open(parent_dir(&path)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Writes `path` atomically through `write` (buffered). On any error nothing is left behind and
/// a previous file at `path` is untouched.
pub fn write_atomic_with<E>(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<io::Error>,
{
    let mut f = AtomicFile::create(path)?;
    {
        let mut w = BufWriter::new(f.file());
        write(&mut w)?;
        w.flush().map_err(|e| at(path, "cannot write", e))?;
    }
    f.commit()?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| {
        w.write_all(bytes).map_err(|e| at(path, "cannot write", e))
    })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The bytes of a hex string (either case); `None` if it is not one.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// SHA-256 of `bytes`, as 64 hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// An incremental SHA-256.
#[derive(Clone, Debug, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }
    pub fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.update(bytes.as_ref());
    }
    /// The first `n` bytes of the digest as hex (`n` <= 32).
    pub fn finish_hex(self, n: usize) -> String {
        hex(&self.0.finalize()[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_failures_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let e = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "boom");
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["t.txt"]);
        let e = write_atomic(&dir.path().join("no/such/dir/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("no/such/dir/x"), "{e}");
    }

    #[test]
    fn an_uncommitted_file_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.file().write_all(b"x").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn hashes_and_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new();
        h.update("a");
        h.update(b"bc");
        assert_eq!(h.finish_hex(4), "ba7816bf");
        assert_eq!(unhex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
