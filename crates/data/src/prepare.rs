//! `mpq data prepare`: an image folder decoded once into a prepared tensor dataset, streamed in
//! chunks (memory stays bounded however large the folder), images in the folder's
//! torchvision order.
use crate::imagefolder::{ImageFolder, OnBadImage};
use crate::preprocess::Preprocess;
use crate::tensorfile::{preprocess_metadata, StoredDtype, TensorFileWriter};
use crate::DataError;
use std::path::{Path, PathBuf};

/// Settings of a preparation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrepareOptions {
    pub preprocess: Preprocess,
    pub dtype: StoredDtype,
    pub on_bad: OnBadImage,
    /// Accept class folders without images (they keep their label index).
    pub allow_empty: bool,
    /// Images decoded in parallel between two writes.
    pub chunk: usize,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            preprocess: Preprocess::default(),
            dtype: StoredDtype::F16,
            on_bad: OnBadImage::Fail,
            allow_empty: false,
            chunk: 256,
        }
    }
}

/// What a preparation wrote.
#[derive(Clone, Debug)]
pub struct PrepareReport {
    pub images: usize,
    pub classes: usize,
    /// Files left out as undecodable (with `OnBadImage::Skip`), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Decode every image of the folder `root` and write them to `out` (atomically).
/// `progress(done, total)` is called after each chunk.
pub fn prepare_folder(
    root: &Path,
    out: &Path,
    opts: &PrepareOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PrepareReport, DataError> {
    if opts.preprocess.crop > opts.preprocess.resize {
        return Err(DataError::File {
            path: out.to_path_buf(),
            message: format!(
                "crop {} is larger than resize {}",
                opts.preprocess.crop, opts.preprocess.resize
            ),
        });
    }
    let folder = ImageFolder::scan(root, opts.allow_empty)?;
    if folder.is_empty() {
        return Err(DataError::File {
            path: root.to_path_buf(),
            message: "no images found".into(),
        });
    }
    let mut meta = preprocess_metadata(&opts.preprocess);
    meta.insert("mpq.classes".into(), folder.classes.join(","));
    meta.insert("mpq.source".into(), root.display().to_string());
    let c = opts.preprocess.crop;
    let mut w = TensorFileWriter::create(out, folder.len(), [3, c, c], opts.dtype, meta)?;
    let mut skipped = vec![];
    let all: Vec<usize> = (0..folder.len()).collect();
    let mut done = 0;
    for idx in all.chunks(opts.chunk.max(1)) {
        let l = folder.load(idx, &opts.preprocess, opts.on_bad)?;
        w.push(&l.dataset.images, &l.dataset.labels)?;
        skipped.extend(l.skipped);
        done += idx.len();
        progress(done, folder.len());
    }
    let images = w.finish(skipped.len())?;
    Ok(PrepareReport {
        images,
        classes: folder.classes.len(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagefolder::tests::folder;
    use crate::tensorfile::TensorFile;

    #[test]
    fn a_prepared_file_holds_what_the_folder_loader_gives() {
        let tmp = folder();
        std::fs::write(tmp.path().join("a/corrupt.jpg"), b"\xff\xd8\xff garbage").unwrap();
        let odir = tempfile::tempdir().unwrap();
        let out = odir.path().join("val.safetensors");
        let opts = PrepareOptions {
            preprocess: Preprocess {
                resize: 24,
                crop: 20,
                ..Preprocess::default()
            },
            dtype: StoredDtype::F32,
            chunk: 2,
            ..PrepareOptions::default()
        };
        // An empty class folder and a corrupt file are errors unless allowed / skipped.
        let e = prepare_folder(tmp.path(), &out, &opts, &mut |_, _| {}).unwrap_err();
        assert!(
            e.to_string().contains("/c: class folder holds no image"),
            "{e}"
        );
        let opts = PrepareOptions {
            allow_empty: true,
            ..opts
        };
        let e = prepare_folder(tmp.path(), &out, &opts, &mut |_, _| {}).unwrap_err();
        assert!(
            e.to_string().contains("a/corrupt.jpg: cannot decode image"),
            "{e}"
        );
        assert!(!out.exists(), "nothing written on failure");
        assert_eq!(
            std::fs::read_dir(odir.path()).unwrap().count(),
            0,
            "no temporary left"
        );
        let opts = PrepareOptions {
            on_bad: OnBadImage::Skip,
            ..opts
        };
        let mut calls = vec![];
        let r = prepare_folder(tmp.path(), &out, &opts, &mut |d, t| calls.push((d, t))).unwrap();
        assert_eq!((r.images, r.classes, r.skipped.len()), (5, 4, 1));
        assert_eq!(calls, [(2, 6), (4, 6), (6, 6)]);
        let f = TensorFile::open(&out).unwrap();
        assert_eq!(f.metadata["mpq.skipped"], "1");
        assert_eq!(f.metadata["mpq.classes"], "a,b,c,d");
        assert_eq!(f.preprocess().unwrap(), Some(opts.preprocess));
        let folder = ImageFolder::scan(tmp.path(), true).unwrap();
        let all: Vec<usize> = (0..folder.len()).collect();
        let want = folder
            .load(&all, &opts.preprocess, OnBadImage::Skip)
            .unwrap()
            .dataset;
        let got = f.gather(&(0..5).collect::<Vec<_>>(), 4);
        assert_eq!(got.labels, want.labels);
        assert_eq!(got.images, want.images);
    }
}
