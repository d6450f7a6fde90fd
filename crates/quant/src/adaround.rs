//! The rounding arithmetic of AdaRound (Nagel et al. 2020): on a fixed grid, each weight is
//! `s * clamp(floor(w / s) + h, lo, hi)` with `h` in [0, 1] learned (`crates/models` runs the
//! layer-wise optimisation). `h(V) = clamp(sigmoid(V) (zeta - gamma) + gamma, 0, 1)` is the
//! rectified sigmoid with `zeta = 1.1`, `gamma = -0.1` (it reaches 0 and 1 exactly, so the
//! learned values can become hard); the regulariser `sum(1 - |2h - 1|^beta)` pushes every `h`
//! to 0 or 1 as `beta` anneals. `V` starts where `h(V)` is the fractional part of `w / s`, so the
//! soft weights start at the float weights, and the final rounding is up where `V >= 0`.
use crate::uniform::Uniform;
use candle_core::{Result, Tensor};

pub const ZETA: f64 = 1.1;
pub const GAMMA: f64 = -0.1;

/// For weights `w` in rows of `per_row` values, each row on its grid: the codes `floor(w / s)`
/// and the initial `V` (where `h(V)` equals the fractional part).
pub fn init(w: &[f32], grids: &[Uniform]) -> (Vec<f32>, Vec<f32>) {
    let per_row = w.len() / grids.len();
    let mut floor = vec![0f32; w.len()];
    let mut v = vec![0f32; w.len()];
    for (r, row) in w.chunks(per_row).enumerate() {
        let inv = 1.0 / grids[r].scale;
        for (k, &x) in row.iter().enumerate() {
            let t = x * inv;
            let f = t.floor();
            let rest = (t - f) as f64;
            let sig = ((rest - GAMMA) / (ZETA - GAMMA)).clamp(1e-6, 1.0 - 1e-6);
            floor[r * per_row + k] = f;
            v[r * per_row + k] = (sig / (1.0 - sig)).ln() as f32;
        }
    }
    (floor, v)
}

/// `h(V)`, differentiable.
pub fn rectified_sigmoid(v: &Tensor) -> Result<Tensor> {
    let sig = (v.neg()?.exp()? + 1.0)?.recip()?;
    sig.affine(ZETA - GAMMA, GAMMA)?.clamp(0f32, 1f32)
}

/// The soft weights `s * clamp(floor + h, lo, hi)`: `floor` and `h` `[rows, per_row]`, the grid's
/// `lo`, `hi` and `scale` as `[rows, 1]` columns.
pub fn soft_weights(
    floor: &Tensor,
    h: &Tensor,
    lo: &Tensor,
    hi: &Tensor,
    scale: &Tensor,
) -> Result<Tensor> {
    floor
        .add(h)?
        .broadcast_maximum(lo)?
        .broadcast_minimum(hi)?
        .broadcast_mul(scale)
}

/// The rounding regulariser `sum(1 - |2h - 1|^beta)`.
pub fn regularizer(h: &Tensor, beta: f64) -> Result<Tensor> {
    h.affine(2.0, -1.0)?
        .abs()?
        .powf(beta)?
        .affine(-1.0, 1.0)?
        .sum_all()
}

/// `beta` at iteration `it`: none during the warm-up (`None`), then decaying linearly from
/// `start` to `end` over the remaining iterations.
pub fn beta_at(it: u32, warm: u32, iterations: u32, start: f64, end: f64) -> Option<f64> {
    (it >= warm).then(|| {
        let rel = (it - warm) as f64 / (iterations - warm).max(1) as f64;
        end + (start - end) * (1.0 - rel).max(0.0)
    })
}

/// The hard weights: `floor + 1` where `V >= 0`, clamped to the row's codes, times its step.
pub fn harden(floor: &[f32], v: &[f32], grids: &[Uniform]) -> Vec<f32> {
    let per_row = floor.len() / grids.len();
    floor
        .iter()
        .zip(v)
        .enumerate()
        .map(|(k, (&f, &vk))| {
            let g = &grids[k / per_row];
            let up = if vk >= 0.0 { 1.0 } else { 0.0 };
            (f + up).clamp(g.lo as f32, g.hi as f32) * g.scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn soft_weights_start_at_the_float_weights_and_harden_to_the_grid() {
        let dev = Device::Cpu;
        let g = Uniform::from_range(-1.0, 1.0, 3).unwrap();
        let w = vec![-0.8f32, -0.33, 0.0, 0.12, 0.49, 0.71];
        let (floor, v) = init(&w, &[g]);
        let vt = Tensor::from_vec(v.clone(), (1, 6), &dev).unwrap();
        let h = rectified_sigmoid(&vt).unwrap();
        let col = |x: f32| Tensor::from_vec(vec![x], (1, 1), &dev).unwrap();
        let ws = soft_weights(
            &Tensor::from_vec(floor.clone(), (1, 6), &dev).unwrap(),
            &h,
            &col(g.lo as f32),
            &col(g.hi as f32),
            &col(g.scale),
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        for (a, b) in ws.iter().zip(&w) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Initial V rounds to nearest when hardened (h >= 1/2 exactly when the fraction is).
        let hard = harden(&floor, &v, &[g]);
        let mut nearest = w.clone();
        g.quantize_slice(&mut nearest);
        assert_eq!(hard, nearest);
        // The regulariser is 0 on hard values and largest at 1/2.
        let hv = Tensor::from_vec(vec![0f32, 1.0, 0.5], 3, &dev).unwrap();
        let r = regularizer(&hv, 2.0).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(r, 1.0);
        assert_eq!(beta_at(5, 10, 100, 20.0, 2.0), None);
        assert_eq!(beta_at(10, 10, 100, 20.0, 2.0), Some(20.0));
        let last = beta_at(99, 10, 100, 20.0, 2.0).unwrap();
        assert!((last - (2.0 + 18.0 / 90.0)).abs() < 1e-12);
    }
}
