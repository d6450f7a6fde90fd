//! torchvision's standard evaluation transform, reproduced so that this project sees the same
//! input tensors as a PyTorch evaluation of the same images: `Resize(resize)` of the shorter
//! side, `CenterCrop(crop)`, `ToTensor()`, `Normalize(mean, std)`.
//!
//! The resize is Pillow's (what torchvision applies to the PIL images its `ImageFolder` loads):
//! a separable convolution with the triangle (bilinear) or Keys a = -0.5 (bicubic) filter
//! stretched by the scale factor (that is the antialiasing), coefficients normalised and
//! rounded to 22-bit fixed point, one pass per axis into an 8-bit intermediate image, each
//! output rounded and clamped to 0..255 (see [`resize`] for the order of the passes). Written
//! from Pillow's published algorithm (`Resample.c`), not from its code; on the same decoded
//! pixels it gives the same bytes as Pillow 13.
//!
//! The output size follows torchvision: the shorter side becomes `resize`, the longer
//! `floor(resize * long / short)`; the crop offsets are `round((side - crop) / 2)` with Python's
//! round half to even; `ToTensor` divides by 255 and `Normalize` computes `(x - mean) / std`,
//! both in f32.

/// The resampling filter of the resize: triangle, support 1 (torchvision's default,
/// `InterpolationMode.BILINEAR`), or Keys cubic with a = -0.5, support 2 (timm's evaluation
/// transform for Xception). The vocabulary's type.
pub use mpq_vocab::Interpolation;

/// The filter's support.
fn support(f: Interpolation) -> f64 {
    match f {
        Interpolation::Bilinear => 1.0,
        Interpolation::Bicubic => 2.0,
    }
}

/// The filter's weight at distance `x`.
fn filter(f: Interpolation, x: f64) -> f64 {
    let x = x.abs();
    match f {
        Interpolation::Bilinear => {
            if x < 1.0 {
                1.0 - x
            } else {
                0.0
            }
        }
        Interpolation::Bicubic => {
            let a = -0.5;
            if x < 1.0 {
                ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * a
            } else {
                0.0
            }
        }
    }
}

/// ImageNet channel statistics of torchvision's reference scripts.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The evaluation transform's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// The shorter side after resizing.
    pub resize: usize,
    /// Side of the square center crop; at most `resize`.
    pub crop: usize,
    pub interpolation: Interpolation,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Preprocess {
    /// torchvision's ImageNet evaluation: resize 256, crop 224, bilinear, ImageNet mean/std.
    fn default() -> Self {
        Preprocess {
            resize: 256,
            crop: 224,
            interpolation: Interpolation::Bilinear,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

/// An 8-bit RGB image, pixels interleaved row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: first input index and the fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

fn coeffs(in_size: usize, out_size: usize, f: Interpolation) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support(f) * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = filter(f, (x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(xmax) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = v * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs {
        bounds,
        weights,
        ksize,
    }
}

fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The horizontal pass: every row resampled to `width` columns.
fn horizontal(img: &Rgb8, width: usize, f: Interpolation) -> Rgb8 {
    let ch = coeffs(img.width, width, f);
    let mut out = vec![0u8; width * img.height * 3];
    for y in 0..img.height {
        let src = &img.data[y * img.width * 3..(y + 1) * img.width * 3];
        let dst = &mut out[y * width * 3..(y + 1) * width * 3];
        for (xx, &(xmin, xmax)) in ch.bounds.iter().enumerate() {
            let k = &ch.weights[xx * ch.ksize..xx * ch.ksize + xmax];
            let mut ss = [1i32 << (PRECISION_BITS - 1); 3];
            for (x, &w) in k.iter().enumerate() {
                let p = &src[(x + xmin) * 3..(x + xmin) * 3 + 3];
                for c in 0..3 {
                    ss[c] += p[c] as i32 * w;
                }
            }
            for c in 0..3 {
                dst[xx * 3 + c] = clip8(ss[c]);
            }
        }
    }
    Rgb8 {
        width,
        height: img.height,
        data: out,
    }
}

/// The vertical pass: every column resampled to `height` rows.
fn vertical(img: &Rgb8, height: usize, f: Interpolation) -> Rgb8 {
    let cv = coeffs(img.height, height, f);
    let w3 = img.width * 3;
    let mut out = vec![0u8; w3 * height];
    for (yy, &(ymin, ymax)) in cv.bounds.iter().enumerate() {
        let k = &cv.weights[yy * cv.ksize..yy * cv.ksize + ymax];
        let dst = &mut out[yy * w3..(yy + 1) * w3];
        for (i, d) in dst.iter_mut().enumerate() {
            let mut ss = 1i32 << (PRECISION_BITS - 1);
            for (y, &w) in k.iter().enumerate() {
                ss += img.data[(y + ymin) * w3 + i] as i32 * w;
            }
            *d = clip8(ss);
        }
    }
    Rgb8 {
        width: img.width,
        height,
        data: out,
    }
}

/// Pillow's `Image.resize((width, height), filter)` of an RGB image. Each pass runs only when
/// its side changes. The passes round to 8 bits in between, so their order matters: Pillow
/// 13 runs the vertical pass first when the height shrinks by more than twice as many pixels
/// as the width (`in_h - out_h > 2 * (in_w - out_w)`, found by probing Pillow 13.0, whose
/// pull request 9549 introduced it; earlier versions always run the horizontal pass first).
/// Both orders agree for the usual ImageNet shapes, whose sides shrink by similar factors.
pub fn resize(img: &Rgb8, width: usize, height: usize, f: Interpolation) -> Rgb8 {
    let need_h = width != img.width;
    let need_v = height != img.height;
    let vertical_first = need_h
        && need_v
        && img.height > height
        && (img.height - height) as i64 > 2 * (img.width as i64 - width as i64);
    match (need_h, need_v) {
        (false, false) => img.clone(),
        (true, false) => horizontal(img, width, f),
        (false, true) => vertical(img, height, f),
        (true, true) if vertical_first => horizontal(&vertical(img, height, f), width, f),
        (true, true) => vertical(&horizontal(img, width, f), height, f),
    }
}

/// torchvision's `Resize(size)` output `(width, height)`: the shorter side becomes `size`.
pub fn resized_dims(width: usize, height: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((size * long) as f64 / short as f64) as usize;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// Python's `int(round(d / 2))` for a non-negative integer `d`: half to even.
fn half_round_even(d: usize) -> usize {
    let lo = d / 2;
    if d % 2 == 1 && lo % 2 == 1 {
        lo + 1
    } else {
        lo
    }
}

impl Preprocess {
    /// The normalized `[3, crop, crop]` tensor (channel-major) of an image. `Err` names what
    /// is wrong with the image (too small to crop, empty).
    pub fn apply(&self, img: &Rgb8) -> Result<Vec<f32>, String> {
        if img.width == 0 || img.height == 0 {
            return Err("empty image".into());
        }
        let (w, h) = resized_dims(img.width, img.height, self.resize);
        let r = if (w, h) == (img.width, img.height) {
            std::borrow::Cow::Borrowed(img)
        } else {
            std::borrow::Cow::Owned(resize(img, w, h, self.interpolation))
        };
        let c = self.crop;
        if r.width < c || r.height < c {
            return Err(format!(
                "resized to {}x{}, smaller than the {c}x{c} crop",
                r.width, r.height
            ));
        }
        let top = half_round_even(r.height - c);
        let left = half_round_even(r.width - c);
        let mut out = vec![0f32; 3 * c * c];
        for y in 0..c {
            let row =
                &r.data[((top + y) * r.width + left) * 3..((top + y) * r.width + left + c) * 3];
            for x in 0..c {
                for ch in 0..3 {
                    let v = row[x * 3 + ch] as f32 / 255.0;
                    out[ch * c * c + y * c + x] = (v - self.mean[ch]) / self.std[ch];
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Rgb8 {
        let mut data = vec![];
        for y in 0..h {
            for x in 0..w {
                data.extend([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 5) as u8]);
            }
        }
        Rgb8 {
            width: w,
            height: h,
            data,
        }
    }

    /// The image `tools/pillow_resize_fixture.py` resizes with Pillow.
    fn pillow_gradient(w: usize, h: usize) -> Rgb8 {
        let mut data = vec![];
        for y in 0..h {
            for x in 0..w {
                data.extend([
                    ((x * 37 + y * 11) % 256) as u8,
                    ((x * y * 13) % 256) as u8,
                    ((255 + 256 * 4 - x * 9 - y * 5) % 256) as u8,
                ]);
            }
        }
        Rgb8 {
            width: w,
            height: h,
            data,
        }
    }

    /// Byte for byte what Pillow's `Image.resize` gives (downscales, upscales, one axis
    /// only), from `testdata/pillow_resize.txt`.
    #[test]
    fn resize_reproduces_pillow_bytes() {
        let img = pillow_gradient(13, 9);
        let mut checked = 0;
        for line in include_str!("../testdata/pillow_resize.txt").lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let f: Interpolation = it.next().unwrap().parse().unwrap();
            let w: usize = it.next().unwrap().parse().unwrap();
            let h: usize = it.next().unwrap().parse().unwrap();
            let want: Vec<u8> = it.map(|v| v.parse().unwrap()).collect();
            let got = resize(&img, w, h, f);
            assert_eq!((got.width, got.height), (w, h));
            assert_eq!(got.data, want, "{f:?} to {w}x{h}");
            checked += 1;
        }
        assert_eq!(checked, 16);
    }

    #[test]
    fn output_sizes_and_crop_offsets_follow_torchvision() {
        assert_eq!(resized_dims(500, 375, 256), (341, 256));
        assert_eq!(resized_dims(375, 500, 256), (256, 341));
        assert_eq!(resized_dims(333, 333, 256), (256, 256));
        // (341 - 224) / 2 = 58.5 rounds to the even 58; 59.5 to 60.
        assert_eq!(half_round_even(117), 58);
        assert_eq!(half_round_even(119), 60);
        assert_eq!(half_round_even(32), 16);
    }

    #[test]
    fn constant_images_stay_constant_and_coefficients_sum_to_one() {
        for f in [Interpolation::Bilinear, Interpolation::Bicubic] {
            for (i, o) in [(500, 256), (97, 256), (256, 256), (7, 3)] {
                let c = coeffs(i, o, f);
                for xx in 0..o {
                    let s: i64 = c.weights[xx * c.ksize..(xx + 1) * c.ksize]
                        .iter()
                        .map(|&w| w as i64)
                        .sum();
                    assert!((s - (1 << PRECISION_BITS)).abs() <= c.ksize as i64, "{f:?}");
                }
            }
            let img = Rgb8 {
                width: 50,
                height: 30,
                data: [10u8, 128, 250].repeat(50 * 30),
            };
            let r = resize(&img, 23, 41, f);
            assert!(r.data.chunks(3).all(|p| p == [10, 128, 250]), "{f:?}");
        }
    }

    /// A downscale by 2 worked out by hand from the algorithm: the triangle is stretched to
    /// support 2, edge windows are clipped and renormalised.
    #[test]
    fn downscale_averages_neighbours_with_stretched_triangle_weights() {
        // One row, 4 pixels -> 2: scale 2, support 2, centers 1.0 and 3.0.
        let img = Rgb8 {
            width: 4,
            height: 1,
            data: [0u8, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40].to_vec(),
        };
        let r = resize(&img, 2, 1, Interpolation::Bilinear);
        // Output 0: center 1.0, xmin 0, xmax 3; weights at x+0.5-1 = -0.5, 0.5, 1.5 scaled by
        // 1/2: 0.75, 0.75, 0.25 -> normalised 3/7, 3/7, 1/7: (0 + 300 + 200) / 7 = 71.43 -> 71.
        // Output 1: center 3.0, xmin 1, xmax 3 (clipped): weights at 1.5-3... = 0.25, 0.75, 0.75
        // -> (100 + 600 + 120) / 7 = 117.14 -> 117.
        assert_eq!(r.data, vec![71, 71, 71, 117, 117, 117]);
    }

    #[test]
    fn normalized_crop_of_a_resized_image() {
        let img = gradient(40, 30);
        let p = Preprocess {
            resize: 20,
            crop: 16,
            ..Preprocess::default()
        };
        let t = p.apply(&img).unwrap();
        assert_eq!(t.len(), 3 * 16 * 16);
        let r = resize(&img, 26, 20, Interpolation::Bilinear);
        // (26 - 16) / 2 = 5 columns, (20 - 16) / 2 = 2 rows cut on the left and top.
        let px = |x: usize, y: usize, c: usize| r.data[((y + 2) * 26 + x + 5) * 3 + c];
        for (x, y, c) in [(0, 0, 0), (15, 15, 2), (3, 9, 1)] {
            let want = (px(x, y, c) as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert_eq!(t[c * 256 + y * 16 + x], want);
        }
        let small = Preprocess {
            resize: 8,
            crop: 16,
            ..p
        };
        assert!(small
            .apply(&img)
            .unwrap_err()
            .contains("smaller than the 16x16 crop"));
    }
}
