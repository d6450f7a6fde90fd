//! Image folders in torchvision's `ImageFolder` layout (one subfolder per class, e.g. the
//! ImageNet validation set sorted into synset folders), scanned and labelled exactly as
//! torchvision does, and decoded (JPEG, PNG) and preprocessed in parallel.
//!
//! torchvision's rules, reproduced: the classes are the subfolders of the root (symbolic links
//! followed, hidden ones included), sorted by name; class `i` of that order has label `i`.
//! Each class folder is walked recursively (links followed); a file is an image when its
//! name ends, in any case, with one of [`IMG_EXTENSIONS`]; images are ordered by class, then
//! by the path of their folder, then by name (byte order, as Python sorts strings). A class
//! folder without any image is an error, as torchvision's default (`allow_empty=False`); when
//! allowed, the empty class keeps its label index (the labels of later classes do not move).
//! Images are decoded by content; this build decodes JPEG and PNG, so a file with another of
//! torchvision's extensions (`.bmp`, `.webp`, ...) is reported like a corrupt one.
use crate::preprocess::{Preprocess, Rgb8};
use crate::{DataError, Dataset};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// torchvision's `IMG_EXTENSIONS`.
pub const IMG_EXTENSIONS: [&str; 9] = [
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
];

/// A scanned image folder: the classes and every image with its label, in torchvision's order.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolder {
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub items: Vec<(PathBuf, u32)>,
}

/// What to do with an image that cannot be read or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBadImage {
    /// Stop with an error naming the file.
    Fail,
    /// Leave it out, and list it in [`Loaded::skipped`].
    Skip,
}

/// Images loaded from a folder, and the files that were left out.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub dataset: Dataset,
    /// The files that could not be decoded, with the reason (only with [`OnBadImage::Skip`]).
    pub skipped: Vec<(PathBuf, String)>,
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_lowercase();
    IMG_EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

fn err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl ImageFolder {
    /// Scan `root`. `allow_empty`: accept class folders without images (they keep their label).
    pub fn scan(root: &Path, allow_empty: bool) -> Result<ImageFolder, DataError> {
        if !root.exists() {
            return Err(err(root, "image folder not found"));
        }
        if !root.is_dir() {
            return Err(err(root, "not a folder (expected one subfolder per class)"));
        }
        let rd = std::fs::read_dir(root).map_err(|e| err(root, format!("cannot list: {e}")))?;
        let mut classes: Vec<String> = vec![];
        for e in rd {
            let e = e.map_err(|e| err(root, format!("cannot list: {e}")))?;
            // `Path::is_dir` follows symbolic links, as Python's `DirEntry.is_dir()`.
            if e.path().is_dir() {
                let name = e
                    .file_name()
                    .into_string()
                    .map_err(|n| err(&root.join(&n), "class folder name is not valid UTF-8"))?;
                classes.push(name);
            }
        }
        classes.sort();
        if classes.is_empty() {
            return Err(err(
                root,
                "no class folders (expected one subfolder per class, e.g. n01440764/)",
            ));
        }
        let mut items = vec![];
        for (label, class) in classes.iter().enumerate() {
            let dir = root.join(class);
            let mut files: Vec<(Vec<u8>, Vec<u8>, PathBuf)> = vec![];
            for e in walkdir::WalkDir::new(&dir).follow_links(true) {
                let e = e.map_err(|e| {
                    let p = e.path().unwrap_or(&dir).to_path_buf();
                    err(
                        &p,
                        format!(
                            "cannot read: {}",
                            e.io_error().map_or(e.to_string(), |i| i.to_string())
                        ),
                    )
                })?;
                if !e.file_type().is_file() {
                    continue;
                }
                let name = e.file_name().to_string_lossy();
                if !is_image_name(&name) {
                    continue;
                }
                let parent = e.path().parent().unwrap_or(&dir);
                files.push((
                    parent.as_os_str().as_encoded_bytes().to_vec(),
                    e.file_name().as_encoded_bytes().to_vec(),
                    e.path().to_path_buf(),
                ));
            }
            if files.is_empty() && !allow_empty {
                return Err(err(
                    &dir,
                    format!(
                        "class folder holds no image ({}); torchvision's ImageFolder refuses \
                         this too: allow empty classes to keep its label index",
                        IMG_EXTENSIONS.join(", ")
                    ),
                ));
            }
            files.sort();
            items.extend(files.into_iter().map(|(_, _, p)| (p, label as u32)));
        }
        Ok(ImageFolder {
            root: root.to_path_buf(),
            classes,
            items,
        })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Decode and preprocess the images `idx` (in that order), in parallel.
    pub fn load(
        &self,
        idx: &[usize],
        pre: &Preprocess,
        on_bad: OnBadImage,
    ) -> Result<Loaded, DataError> {
        let decoded: Vec<Result<Vec<f32>, (PathBuf, String)>> = idx
            .par_iter()
            .map(|&i| {
                let path = &self.items[i].0;
                read_image(path)
                    .and_then(|img| pre.apply(&img))
                    .map_err(|m| (path.clone(), m))
            })
            .collect();
        let c = pre.crop;
        let mut ds = Dataset {
            images: Vec::with_capacity(idx.len() * 3 * c * c),
            labels: Vec::with_capacity(idx.len()),
            shape: [3, c, c],
            num_classes: self.classes.len(),
        };
        let mut skipped = vec![];
        for (&i, r) in idx.iter().zip(decoded) {
            match r {
                Ok(v) => {
                    ds.images.extend_from_slice(&v);
                    ds.labels.push(self.items[i].1);
                }
                Err((path, m)) => match on_bad {
                    OnBadImage::Fail => return Err(err(&path, m)),
                    OnBadImage::Skip => skipped.push((path, m)),
                },
            }
        }
        Ok(Loaded {
            dataset: ds,
            skipped,
        })
    }
}

/// Decode an image file to 8-bit RGB (grey replicated, alpha dropped, as PIL's
/// `convert("RGB")`). `Err` is the reason, without the path.
pub fn read_image(path: &Path) -> Result<Rgb8, String> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not a JPEG or PNG image (this build decodes those two formats)".into());
    }
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode image: {}", first_line(&e.to_string())))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    Ok(Rgb8 {
        width: w as usize,
        height: h as usize,
        data: img.into_raw(),
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a small image folder: classes `a` (2 JPEG), `b` (PNG in a subfolder, a JPEG
    /// with an upper-case extension, a text file), `c` empty, `d` (one PNG). Returns the
    /// directory guard.
    pub fn folder() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for d in ["a", "b/sub", "c", "d"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        let img = |w: u32, h: u32, seed: u32| {
            image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([
                    (x * 7 + seed * 40) as u8,
                    (y * 5 + seed) as u8,
                    ((x + y) * 3) as u8,
                ])
            })
        };
        img(40, 30, 1).save(r.join("a/x2.jpg")).unwrap();
        img(30, 40, 2).save(r.join("a/x1.jpeg")).unwrap();
        img(36, 36, 3).save(r.join("b/sub/p.png")).unwrap();
        std::fs::copy(r.join("a/x2.jpg"), r.join("b/Z.JPG")).unwrap();
        std::fs::write(r.join("b/notes.txt"), "not an image").unwrap();
        img(50, 34, 4).save(r.join("d/q.png")).unwrap();
        std::fs::write(
            r.join("stray.jpg"),
            "files at the root are not images of a class",
        )
        .unwrap();
        tmp
    }

    #[test]
    fn scan_orders_and_labels_as_torchvision() {
        let tmp = folder();
        let e = ImageFolder::scan(tmp.path(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/c: class folder holds no image"), "{e}");
        let f = ImageFolder::scan(tmp.path(), true).unwrap();
        assert_eq!(f.classes, ["a", "b", "c", "d"]);
        let got: Vec<(String, u32)> = f
            .items
            .iter()
            .map(|(p, l)| {
                let rel = p.strip_prefix(tmp.path()).unwrap();
                (rel.to_string_lossy().into_owned(), *l)
            })
            .collect();
        // b's own files ("b") sort before those of its subfolder ("b/sub"); the empty class
        // c keeps label 2, so d is 3.
        let want = [
            ("a/x1.jpeg", 0),
            ("a/x2.jpg", 0),
            ("b/Z.JPG", 1),
            ("b/sub/p.png", 1),
            ("d/q.png", 3),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(p, l)| (p.to_string(), *l))
                .collect::<Vec<_>>()
        );
        let missing = ImageFolder::scan(&tmp.path().join("nope"), true).unwrap_err();
        assert!(missing
            .to_string()
            .ends_with("nope: image folder not found"));
    }

    #[test]
    fn load_decodes_jpeg_and_png_and_names_a_corrupt_file() {
        let tmp = folder();
        std::fs::write(
            tmp.path().join("d/broken.png"),
            b"\x89PNG\r\n\x1a\n garbage",
        )
        .unwrap();
        let f = ImageFolder::scan(tmp.path(), true).unwrap();
        let pre = Preprocess {
            resize: 24,
            crop: 20,
            ..Preprocess::default()
        };
        let all: Vec<usize> = (0..f.len()).collect();
        let e = f
            .load(&all, &pre, OnBadImage::Fail)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d/broken.png: cannot decode image"), "{e}");
        assert_eq!(e.lines().count(), 1);
        let l = f.load(&all, &pre, OnBadImage::Skip).unwrap();
        assert_eq!(l.skipped.len(), 1);
        assert!(l.skipped[0].0.ends_with("d/broken.png"));
        assert_eq!(l.dataset.len(), 5);
        assert_eq!(l.dataset.labels, [0, 0, 1, 1, 3]);
        assert_eq!(l.dataset.shape, [3, 20, 20]);
        // The PNG is lossless: its tensor is exactly the transform of its pixels.
        let png = f
            .items
            .iter()
            .position(|(p, _)| p.ends_with("p.png"))
            .unwrap();
        let want = pre.apply(&read_image(&f.items[png].0).unwrap()).unwrap();
        assert_eq!(&l.dataset.images[png * 1200..(png + 1) * 1200], &want[..]);
        // A subset, in the order asked for.
        let s = f.load(&[5, 0], &pre, OnBadImage::Fail).unwrap();
        assert_eq!(s.dataset.labels, [3, 0]);
    }
}
