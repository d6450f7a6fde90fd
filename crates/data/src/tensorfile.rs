//! Prepared tensor datasets: images already decoded, resized, cropped and normalized, stored in
//! one safetensors file, so that a search does not decode 50,000 JPEGs on every run.
//!
//! The format (documented in docs/datasets.md): tensor `images`, float32 or float16,
//! `[N, 3, H, W]`, normalized; tensor `labels`, int64, `[N]`, each `>= 0`; optional string
//! metadata `mpq.*` recording how the file was made (`mpq.resize`, `mpq.crop`,
//! `mpq.interpolation`, `mpq.mean`, `mpq.std`, `mpq.classes`, `mpq.source`, `mpq.skipped`).
//! Any tool that writes those two tensors makes a usable file; the metadata lets a run check
//! that the file was prepared with the preprocessing its manifest asks for.
//!
//! Reading maps the file and converts only the images asked for, so a file larger than memory
//! works as long as the chosen subset fits. Writing streams: images are appended as they are
//! decoded, into a temporary file renamed onto the target at the end (never a half-written
//! file under the real name); the header is reserved up front and rewritten, padded with
//! spaces as the safetensors format allows, once the count is known.
use crate::preprocess::{Interpolation, Preprocess};
use crate::{DataError, Dataset};
use rayon::prelude::*;
use safetensors::tensor::Dtype;
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Element type of the stored images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredDtype {
    F32,
    F16,
}

impl StoredDtype {
    pub fn parse(s: &str) -> Option<StoredDtype> {
        match s {
            "f32" | "F32" | "float32" => Some(StoredDtype::F32),
            "f16" | "F16" | "float16" => Some(StoredDtype::F16),
            _ => None,
        }
    }
    fn bytes(&self) -> usize {
        match self {
            StoredDtype::F32 => 4,
            StoredDtype::F16 => 2,
        }
    }
    fn tag(&self) -> &'static str {
        match self {
            StoredDtype::F32 => "F32",
            StoredDtype::F16 => "F16",
        }
    }
}

fn file_err(path: &Path, message: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn tensor_err(path: &Path, tensor: &str, message: impl Into<String>) -> DataError {
    DataError::Tensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        message: message.into(),
    }
}

/// An opened prepared dataset: labels in memory, images mapped.
pub struct TensorFile {
    pub path: PathBuf,
    map: memmap2::Mmap,
    /// `[3, H, W]` of one image.
    pub shape: [usize; 3],
    pub dtype: StoredDtype,
    images_start: usize,
    pub labels: Vec<u32>,
    /// The file's string metadata (`mpq.*` keys when this project wrote it).
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// Open and check a prepared dataset: both tensors present with the right dtypes and
    /// shapes, at least one image, every label `>= 0`.
    pub fn open(path: &Path) -> Result<TensorFile, DataError> {
        if !path.is_file() {
            return Err(file_err(path, "prepared dataset file not found"));
        }
        let file =
            std::fs::File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")))?;
        // SAFETY: the file is only read; a concurrent writer of the same path writes a
        // temporary file and renames it, which does not change the mapped inode.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| file_err(path, format!("cannot map: {e}")))?;
        let (header_len, meta) = safetensors::SafeTensors::read_metadata(&map)
            .map_err(|e| file_err(path, format!("not a readable safetensors file ({e})")))?;
        let tensors = meta.tensors();
        let get = |name: &str| {
            tensors.get(name).copied().ok_or_else(|| {
                tensor_err(
                    path,
                    name,
                    "missing (a prepared dataset holds images [N, 3, H, W] and labels [N])",
                )
            })
        };
        let images = get("images")?;
        let labels = get("labels")?;
        let dtype = match images.dtype {
            Dtype::F32 => StoredDtype::F32,
            Dtype::F16 => StoredDtype::F16,
            d => {
                return Err(tensor_err(
                    path,
                    "images",
                    format!("dtype {d:?}, expected F32 or F16"),
                ))
            }
        };
        let s = &images.shape;
        if s.len() != 4 || s[1] != 3 || s[2] == 0 || s[3] == 0 {
            return Err(tensor_err(
                path,
                "images",
                format!("shape {s:?}, expected [N, 3, H, W]"),
            ));
        }
        let n = s[0];
        if n == 0 {
            return Err(tensor_err(path, "images", "holds no image (N = 0)"));
        }
        if labels.dtype != Dtype::I64 {
            return Err(tensor_err(
                path,
                "labels",
                format!("dtype {:?}, expected I64", labels.dtype),
            ));
        }
        if labels.shape != [n] {
            return Err(tensor_err(
                path,
                "labels",
                format!("shape {:?}, expected [{n}] (one per image)", labels.shape),
            ));
        }
        let data = 8 + header_len;
        let lb = &map[data + labels.data_offsets.0..data + labels.data_offsets.1];
        let mut out = Vec::with_capacity(n);
        for (i, c) in lb.chunks_exact(8).enumerate() {
            let v = i64::from_le_bytes(c.try_into().expect("8 bytes"));
            if v < 0 || v > u32::MAX as i64 {
                return Err(tensor_err(
                    path,
                    "labels",
                    format!("label {v} of image {i} is out of range"),
                ));
            }
            out.push(v as u32);
        }
        let metadata = meta
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(TensorFile {
            path: path.to_path_buf(),
            shape: [3, s[2], s[3]],
            dtype,
            images_start: data + images.data_offsets.0,
            labels: out,
            metadata,
            map,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Every label must be below `num_classes` (the model's outputs).
    pub fn check_labels(&self, num_classes: usize) -> Result<(), DataError> {
        match self.labels.iter().position(|&l| l as usize >= num_classes) {
            None => Ok(()),
            Some(i) => Err(tensor_err(
                &self.path,
                "labels",
                format!(
                    "label {} of image {i} is out of range for a model with {num_classes} classes",
                    self.labels[i]
                ),
            )),
        }
    }

    /// The preprocessing recorded in the metadata, if the file has it.
    pub fn preprocess(&self) -> Result<Option<Preprocess>, DataError> {
        let m = &self.metadata;
        let Some(resize) = m.get("mpq.resize") else {
            return Ok(None);
        };
        let bad = |k: &str| {
            file_err(
                &self.path,
                format!("metadata {k}: cannot parse {:?}", m.get(k)),
            )
        };
        let triple = |k: &str| -> Result<[f32; 3], DataError> {
            let v: Vec<f32> = m
                .get(k)
                .ok_or_else(|| bad(k))?
                .split(',')
                .map(|x| x.trim().parse::<f32>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad(k))?;
            v.try_into().map_err(|_| bad(k))
        };
        let num = |k: &str, v: Option<&String>| -> Result<usize, DataError> {
            v.and_then(|v| v.parse().ok()).ok_or_else(|| bad(k))
        };
        Ok(Some(Preprocess {
            resize: num("mpq.resize", Some(resize))?,
            crop: num("mpq.crop", m.get("mpq.crop"))?,
            interpolation: m
                .get("mpq.interpolation")
                .and_then(|s| s.parse::<Interpolation>().ok())
                .ok_or_else(|| bad("mpq.interpolation"))?,
            mean: triple("mpq.mean")?,
            std: triple("mpq.std")?,
        }))
    }

    /// The images `idx` (any order) as f32, with their labels.
    pub fn gather(&self, idx: &[usize], num_classes: usize) -> Dataset {
        let il: usize = self.shape.iter().product();
        let eb = self.dtype.bytes();
        let mut images = vec![0f32; idx.len() * il];
        images
            .par_chunks_mut(il)
            .zip(idx.par_iter())
            .for_each(|(dst, &i)| {
                let start = self.images_start + i * il * eb;
                let src = &self.map[start..start + il * eb];
                match self.dtype {
                    StoredDtype::F32 => {
                        for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                            *d = f32::from_le_bytes(c.try_into().expect("4 bytes"));
                        }
                    }
                    StoredDtype::F16 => {
                        for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                            *d = half::f16::from_le_bytes(c.try_into().expect("2 bytes")).to_f32();
                        }
                    }
                }
            });
        Dataset {
            images,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            num_classes,
        }
    }
}

/// JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The metadata this project writes for a preprocessing.
pub fn preprocess_metadata(p: &Preprocess) -> BTreeMap<String, String> {
    let join = |v: &[f32; 3]| v.map(|x| x.to_string()).join(",");
    BTreeMap::from([
        ("mpq.resize".to_string(), p.resize.to_string()),
        ("mpq.crop".to_string(), p.crop.to_string()),
        ("mpq.interpolation".to_string(), p.interpolation.to_string()),
        ("mpq.mean".to_string(), join(&p.mean)),
        ("mpq.std".to_string(), join(&p.std)),
    ])
}

/// Streams images into a new prepared dataset file (see the module documentation), written
/// atomically: an unfinished file (an error, or dropped early) leaves nothing behind.
pub struct TensorFileWriter {
    out: PathBuf,
    file: Option<mpq_io::AtomicFile>,
    reserved: usize,
    shape: [usize; 3],
    dtype: StoredDtype,
    n_max: usize,
    labels: Vec<u32>,
    metadata: BTreeMap<String, String>,
}

impl TensorFileWriter {
    /// Start a file of at most `n_max` images of `shape`, with `metadata` (plus `mpq.skipped`,
    /// set by [`finish`](Self::finish)).
    pub fn create(
        out: &Path,
        n_max: usize,
        shape: [usize; 3],
        dtype: StoredDtype,
        metadata: BTreeMap<String, String>,
    ) -> Result<TensorFileWriter, DataError> {
        let other = |e: std::io::Error| file_err(out, format!("cannot write: {e}"));
        if out.file_name().is_none() {
            return Err(file_err(out, "not a file name"));
        }
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(other)?;
        }
        let mut w = TensorFileWriter {
            out: out.to_path_buf(),
            file: None,
            reserved: 0,
            shape,
            dtype,
            n_max,
            labels: vec![],
            metadata,
        };
        // The largest header any count up to n_max can need, rounded up to 8 bytes.
        w.reserved = w.header(n_max, n_max).len().div_ceil(8) * 8;
        let mut f = mpq_io::AtomicFile::create(out).map_err(other)?;
        f.file()
            .write_all(&vec![b' '; 8 + w.reserved])
            .map_err(other)?;
        w.file = Some(f);
        Ok(w)
    }

    fn header(&self, n: usize, skipped: usize) -> String {
        let [c, h, wd] = self.shape;
        let ib = n * c * h * wd * self.dtype.bytes();
        let mut meta = self.metadata.clone();
        meta.insert("mpq.skipped".into(), skipped.to_string());
        let meta: Vec<String> = meta
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
            .collect();
        format!(
            "{{\"__metadata__\":{{{}}},\"images\":{{\"dtype\":\"{}\",\"shape\":[{n},{c},{h},{wd}],\"data_offsets\":[0,{ib}]}},\"labels\":{{\"dtype\":\"I64\",\"shape\":[{n}],\"data_offsets\":[{ib},{}]}}}}",
            meta.join(","),
            self.dtype.tag(),
            ib + 8 * n
        )
    }

    /// Append images (`[k, 3, H, W]` flattened) and their labels.
    pub fn push(&mut self, images: &[f32], labels: &[u32]) -> Result<(), DataError> {
        let il: usize = self.shape.iter().product();
        assert_eq!(
            images.len(),
            labels.len() * il,
            "images and labels disagree"
        );
        if self.labels.len() + labels.len() > self.n_max {
            return Err(file_err(
                &self.out,
                format!("more than the {} images announced", self.n_max),
            ));
        }
        let mut buf = Vec::with_capacity(images.len() * self.dtype.bytes());
        match self.dtype {
            StoredDtype::F32 => images.iter().for_each(|v| buf.extend(v.to_le_bytes())),
            StoredDtype::F16 => images
                .iter()
                .for_each(|v| buf.extend(half::f16::from_f32(*v).to_le_bytes())),
        }
        let f = self.file.as_mut().expect("open until finish");
        f.file()
            .write_all(&buf)
            .map_err(|e| file_err(&self.out, format!("cannot write: {e}")))?;
        self.labels.extend_from_slice(labels);
        Ok(())
    }

    /// Write the labels and the header, and move the file onto its name. Returns the count.
    pub fn finish(mut self, skipped: usize) -> Result<usize, DataError> {
        let out = self.out.clone();
        let other = |e: std::io::Error| file_err(&out, format!("cannot write: {e}"));
        let n = self.labels.len();
        if n == 0 {
            return Err(file_err(&out, "no image to write"));
        }
        let mut header = self.header(n, skipped).into_bytes();
        assert!(header.len() <= self.reserved, "header fits its reservation");
        header.resize(self.reserved, b' ');
        let mut f = self.file.take().expect("open until finish");
        let lb: Vec<u8> = self
            .labels
            .iter()
            .flat_map(|&l| (l as i64).to_le_bytes())
            .collect();
        let file = f.file();
        file.write_all(&lb).map_err(other)?;
        file.seek(SeekFrom::Start(0)).map_err(other)?;
        file.write_all(&(self.reserved as u64).to_le_bytes())
            .map_err(other)?;
        file.write_all(&header).map_err(other)?;
        f.commit().map_err(other)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, dtype: StoredDtype, n: usize) -> Vec<f32> {
        let shape = [3, 2, 3];
        let pre = Preprocess::default();
        let mut w =
            TensorFileWriter::create(path, n + 5, shape, dtype, preprocess_metadata(&pre)).unwrap();
        let v: Vec<f32> = (0..n * 18).map(|i| i as f32 * 0.25 - 3.0).collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
        w.push(&v[..18], &labels[..1]).unwrap();
        w.push(&v[18..], &labels[1..]).unwrap();
        assert_eq!(w.finish(5).unwrap(), n);
        v
    }

    #[test]
    fn written_files_read_back_with_their_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        for dtype in [StoredDtype::F32, StoredDtype::F16] {
            let p = tmp.path().join(format!("{dtype:?}.safetensors"));
            let v = write(&p, dtype, 7);
            let f = TensorFile::open(&p).unwrap();
            assert_eq!((f.len(), f.shape, f.dtype), (7, [3, 2, 3], dtype));
            assert_eq!(f.metadata["mpq.skipped"], "5");
            assert_eq!(f.preprocess().unwrap(), Some(Preprocess::default()));
            let d = f.gather(&[6, 1], 4);
            assert_eq!(d.labels, [2, 1]);
            // Multiples of 0.25 in [-3, 28.5] are exact in f16 too.
            assert_eq!(&d.images[..18], &v[6 * 18..7 * 18]);
            assert_eq!(&d.images[18..], &v[18..36]);
            f.check_labels(4).unwrap();
            let e = f.check_labels(3).unwrap_err().to_string();
            assert!(
                e.contains("tensor \"labels\": label 3 of image 3 is out of range"),
                "{e}"
            );
            // Readable by the reference implementation of the format.
            let bytes = std::fs::read(&p).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            assert_eq!(st.tensor("images").unwrap().shape(), &[7, 3, 2, 3]);
        }
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn bad_files_are_one_line_errors_naming_file_and_tensor() {
        use candle_core::{DType, Device, Tensor};
        let tmp = tempfile::tempdir().unwrap();
        let d = Device::Cpu;
        /// A file's name, its tensors, and the error expected when loading it.
        type Case<'a> = (&'a str, Vec<(&'a str, Tensor)>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "nolabels",
                vec![(
                    "images",
                    Tensor::zeros((2, 3, 4, 4), DType::F32, &d).unwrap(),
                )],
                "tensor \"labels\": missing",
            ),
            (
                "rank",
                vec![
                    ("images", Tensor::zeros((2, 3, 4), DType::F32, &d).unwrap()),
                    ("labels", Tensor::zeros(2, DType::I64, &d).unwrap()),
                ],
                "tensor \"images\": shape [2, 3, 4], expected [N, 3, H, W]",
            ),
            (
                "dtype",
                vec![
                    (
                        "images",
                        Tensor::zeros((2, 3, 4, 4), DType::U8, &d).unwrap(),
                    ),
                    ("labels", Tensor::zeros(2, DType::I64, &d).unwrap()),
                ],
                "tensor \"images\": dtype U8, expected F32 or F16",
            ),
            (
                "count",
                vec![
                    (
                        "images",
                        Tensor::zeros((2, 3, 4, 4), DType::F16, &d).unwrap(),
                    ),
                    ("labels", Tensor::zeros(3, DType::I64, &d).unwrap()),
                ],
                "tensor \"labels\": shape [3], expected [2] (one per image)",
            ),
            (
                "negative",
                vec![
                    (
                        "images",
                        Tensor::zeros((2, 3, 4, 4), DType::F32, &d).unwrap(),
                    ),
                    ("labels", Tensor::new(&[0i64, -1], &d).unwrap()),
                ],
                "tensor \"labels\": label -1 of image 1 is out of range",
            ),
        ];
        for (name, tensors, want) in cases {
            let p = tmp.path().join(format!("{name}.safetensors"));
            candle_core::safetensors::save(
                &tensors
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                &p,
            )
            .unwrap();
            let e = TensorFile::open(&p).err().expect(name).to_string();
            assert!(
                e.starts_with(&p.display().to_string()) && e.contains(want),
                "{e}"
            );
            assert_eq!(e.lines().count(), 1);
        }
        let p = tmp.path().join("garbage.safetensors");
        std::fs::write(&p, b"definitely not").unwrap();
        let e = TensorFile::open(&p).err().unwrap().to_string();
        assert!(
            e.contains("garbage.safetensors: not a readable safetensors file"),
            "{e}"
        );
        let e = TensorFile::open(&tmp.path().join("none.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.ends_with("none.safetensors: prepared dataset file not found"),
            "{e}"
        );
    }
}
