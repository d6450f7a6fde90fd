//! A run's data source turned into its calibration, search and held-out test batches: the
//! embedded dataset's generated splits, or disjoint seeded subsets of an image pool (an
//! ImageNet-style image folder decoded with torchvision's evaluation transform, or a prepared
//! tensor file).
//!
//! Every problem is one line naming the manifest and the key (`data.path`, counts) or the data
//! file (and tensor) at fault.
use crate::inputs::data_path;
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use mpq_data::subset::{Part, Partition};
use mpq_data::synth::{generate, SynthConfig};
use mpq_data::{Batch, Dataset, ImageFolder, OnBadImage, Preprocess, TensorFile};
use mpq_vocab::{DataSource, PoolDraw, Split, Transform};
use std::path::{Path, PathBuf};

/// The images of a run.
#[derive(Debug)]
pub struct DataSplits {
    pub calib: Vec<Batch>,
    pub search: Vec<Batch>,
    /// Held-out images (empty when the run scores none).
    pub test: Vec<Batch>,
    /// Images actually in `calib`, `search` and `test` (fewer than asked for only when
    /// undecodable images were skipped).
    pub n_calib: usize,
    pub n_search: usize,
    pub n_test: usize,
    /// [`mpq_data::Dataset::digest`] of the held-out images (`None` when there are none).
    pub test_digest: Option<String>,
    /// Images left out as undecodable (`data.skip_corrupt`), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// How many images of each part a run uses (`data.calib_images`, `data.search_images`,
/// `data.test_images`).
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    pub calib: usize,
    pub search: usize,
    pub test: usize,
}

/// The evaluation transform of a data source's settings.
pub fn preprocess(t: &Transform) -> Preprocess {
    Preprocess {
        resize: t.resize,
        crop: t.crop,
        interpolation: t.interpolation,
        mean: t.mean.map(|v| v as f32),
        std: t.std.map(|v| v as f32),
    }
}

/// Load the calibration, search and held-out images of `source`, batched for `device`
/// (`calib_batch` images per batch for calibration, `search_batch` for the search and the
/// held-out images). `manifest` names the manifest in errors; `num_classes` is the model's
/// output count.
pub fn load(
    source: &DataSource,
    counts: Counts,
    manifest: &Path,
    num_classes: usize,
    (calib_batch, search_batch): (usize, usize),
    device: &Device,
) -> Result<DataSplits> {
    let at = manifest.display();
    let path = data_path(source).map_err(|e| anyhow!("{at}: {e}"))?;
    let (calib, search, test, skipped) = match (source, path) {
        (
            DataSource::Embedded {
                seed,
                calib,
                search,
                test,
            },
            _,
        ) => {
            let synth = SynthConfig {
                seed: *seed,
                ..SynthConfig::default()
            };
            let c = generate(&synth, *calib, 0, counts.calib);
            let s = generate(&synth, *search, 0, counts.search);
            let t = generate(&synth, *test, 0, counts.test);
            (c, s, t, vec![])
        }
        (
            DataSource::ImageFolder {
                draw,
                transform,
                skip_corrupt,
                allow_empty_classes,
                ..
            },
            Some(root),
        ) => {
            let folder = ImageFolder::scan(&root, *allow_empty_classes)?;
            if folder.classes.len() > num_classes {
                bail!(
                    "{}: {} class folders, more than the model's {num_classes} classes",
                    root.display(),
                    folder.classes.len()
                );
            }
            let (ci, si, ti) = subsets(draw, counts, manifest, folder.len(), &root)?;
            let pre = preprocess(transform);
            let on_bad = if *skip_corrupt {
                OnBadImage::Skip
            } else {
                OnBadImage::Fail
            };
            let c = folder.load(&ci, &pre, on_bad)?;
            let s = folder.load(&si, &pre, on_bad)?;
            let t = folder.load(&ti, &pre, on_bad)?;
            // An image can be in two parts (search_split = "all"): count each file once.
            let mut skipped: Vec<_> = c
                .skipped
                .into_iter()
                .chain(s.skipped)
                .chain(t.skipped)
                .collect();
            skipped.sort_by(|a, b| a.0.cmp(&b.0));
            skipped.dedup_by(|a, b| a.0 == b.0);
            (c.dataset, s.dataset, t.dataset, skipped)
        }
        (
            DataSource::Tensors {
                draw, transform, ..
            },
            Some(file),
        ) => {
            let f = TensorFile::open(&file)?;
            f.check_labels(num_classes)?;
            check_prepared(transform, &f, manifest)?;
            let (ci, si, ti) = subsets(draw, counts, manifest, f.len(), &file)?;
            (
                f.gather(&ci, num_classes),
                f.gather(&si, num_classes),
                f.gather(&ti, num_classes),
                vec![],
            )
        }
        (DataSource::ImageFolder { .. } | DataSource::Tensors { .. }, None) => {
            unreachable!("an image pool always has a path (data_path)")
        }
    };
    let batches = |ds: &Dataset, batch_size: usize| -> Result<Vec<Batch>> {
        if ds.is_empty() {
            bail!("{at}: no image left to use after skipping undecodable ones");
        }
        Ok(ds.batches(batch_size, device)?)
    };
    // No held-out image asked for: nothing to batch (not an error).
    let held_out = counts.test > 0;
    Ok(DataSplits {
        calib: batches(&calib, calib_batch)?,
        search: batches(&search, search_batch)?,
        test: if held_out {
            batches(&test, search_batch)?
        } else {
            vec![]
        },
        n_calib: calib.len(),
        n_search: search.len(),
        n_test: test.len(),
        test_digest: held_out.then(|| test.digest()),
        skipped,
    })
}

/// The calibration, search and held-out indices of a pool of `n` images.
fn subsets(
    draw: &PoolDraw,
    counts: Counts,
    manifest: &Path,
    n: usize,
    source: &Path,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let p = Partition::new(n, draw.subset_seed, counts.calib, counts.search);
    let take = |key: &str, part: Part, k: usize| -> Result<Vec<usize>> {
        p.take(part, k).map(<[usize]>::to_vec).map_err(|have| {
            anyhow!(
                "{}: {key}: {k} images asked from part \"{}\" of the {n} images \
                 of {}, which holds {have} (calibration part first, then search, then test)",
                manifest.display(),
                Split::from(part),
                source.display()
            )
        })
    };
    Ok((
        take("data.calib_images", draw.calib, counts.calib)?,
        take("data.search_images", draw.search, counts.search)?,
        take("data.test_images", draw.test, counts.test)?,
    ))
}

/// A prepared file must hold images of the manifest's crop, and, when it records its
/// preprocessing, the manifest's.
fn check_prepared(t: &Transform, f: &TensorFile, manifest: &Path) -> Result<()> {
    let want = preprocess(t);
    let [_, h, w] = f.shape;
    if (h, w) != (want.crop, want.crop) {
        bail!(
            "{}: tensor \"images\": images are {h}x{w}, but {} asks for data.crop = {}",
            f.path.display(),
            manifest.display(),
            want.crop
        );
    }
    if let Some(got) = f.preprocess()? {
        if got != want {
            bail!(
                "{}: prepared with {}, but {} asks for {} (data.resize, crop, interpolation, mean, std)",
                f.path.display(),
                describe(&got),
                manifest.display(),
                describe(&want)
            );
        }
    }
    Ok(())
}

fn describe(p: &Preprocess) -> String {
    format!(
        "resize {} crop {} {} mean {:?} std {:?}",
        p.resize, p.crop, p.interpolation, p.mean, p.std
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpq_vocab::{Interpolation, PoolPart};

    #[test]
    fn the_default_transform_is_torchvisions() {
        let d = crate::manifest::DataSection::default();
        let t = Transform {
            resize: d.resize,
            crop: d.crop,
            interpolation: d.interpolation,
            mean: d.mean,
            std: d.std,
        };
        assert_eq!(preprocess(&t), Preprocess::default());
        assert_eq!(t.interpolation, Interpolation::Bilinear);
    }

    #[test]
    fn counts_beyond_a_part_name_the_key() {
        let draw = PoolDraw {
            subset_seed: 0,
            calib: PoolPart::Calibration,
            search: PoolPart::Search,
            test: PoolPart::Test,
        };
        let counts = Counts {
            calib: 4,
            search: 7,
            test: 0,
        };
        let e = subsets(
            &draw,
            counts,
            Path::new("m.toml"),
            10,
            Path::new("v.safetensors"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("m.toml: data.search_images: 7 images asked from part \"search\" of the 10 images of v.safetensors, which holds 6"),
            "{e}"
        );
        // Paper style: search on the whole pool, calibration images included.
        let all = PoolDraw {
            search: PoolPart::All,
            ..draw.clone()
        };
        let counts = Counts {
            calib: 4,
            search: 10,
            test: 0,
        };
        let (c, s, _) = subsets(&all, counts, Path::new("m.toml"), 10, Path::new("v")).unwrap();
        assert_eq!((c.len(), s.len()), (4, 10));
        assert!(c.iter().all(|i| s.contains(i)));
        // Default parts are disjoint, the held-out images included.
        let counts = Counts {
            calib: 3,
            search: 4,
            test: 3,
        };
        let (c, s, t) = subsets(&draw, counts, Path::new("m.toml"), 10, Path::new("v")).unwrap();
        assert!(c.iter().all(|i| !s.contains(i) && !t.contains(i)));
        assert!(s.iter().all(|i| !t.contains(i)));
        assert_eq!(t.len(), 3);
        let counts = Counts { test: 4, ..counts };
        let e = subsets(&draw, counts, Path::new("m.toml"), 10, Path::new("v"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.toml: data.test_images: 4 images asked from part \"test\" of the 10 images of v, which holds 3"),
            "{e}"
        );
    }
}
