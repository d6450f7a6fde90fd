//! LAPQ, loss-aware post-training quantization (Nahshan, Chmiel, Baskin, Zheltonozhskii,
//! Banner, Bronstein, Mendelson 2019; `shared/seeds/004_*.txt`), in its three steps
//! (sec. 4, Algorithm 1):
//! 1. **Layer-wise Lp initialisation**: for each `p` of a range (the reference implementation:
//!    ten values from 2 to 4), every weight grid and every input grid minimising the `Lp` norm of
//!    its own quantization error (`mpq_quant::clip`), and the calibration loss of the network
//!    quantized with them.
//! 2. **Quadratic approximation**: a parabola fitted to (p, loss); its minimum `p*` (clamped to
//!    the range; the best sampled `p` when the fit is not convex) gives the starting grids.
//! 3. **Joint optimisation**: Powell's method over the step sizes of every layer (one variable
//!    per weight tensor, scaling all its channels' steps, and one per input) minimising the
//!    calibration loss: the cross-entropy of the quantized network on the calibration images.
//!    Each line search only moves to a point of lower loss, so the loss never increases
//!    (tested), and the search stops after `powell_iterations` sweeps or `max_evaluations` loss
//!    evaluations.
//!
//! A step variable multiplies the step of its grid and keeps its integer codes (zero stays a
//! level). A loss evaluation starts at the stage of the first layer it changes, from cached
//! stage inputs of the current point, so a coordinate move of a late layer costs a fraction of
//! a forward pass. Bias correction, when on (the paper applies it), is applied to the weights
//! inside every evaluation, as the reference implementation does.
use super::{finish_weight, host, mmse, Granularity, MethodReport, PlanRunner, PtqConfig};
use crate::qmodel::{MethodLayer, QuantModel};
use candle_core::{Result, Tensor};
use mpq_data::Batch;
use mpq_quant::{BiasCorrection, BitPair, InputQuant, Uniform};
use serde::{Deserialize, Serialize};

/// LAPQ's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LapqSettings {
    /// The norms `p` of the layer-wise initialisation (at least three, for the fit).
    pub norms: Vec<f64>,
    /// Clipping candidates per grid in the Lp searches.
    pub search_points: u32,
    /// Input values per layer and calibration batch the Lp searches use (evenly strided).
    pub sample: u32,
    /// Powell sweeps over all the variables (the reference runs 1 or 2).
    pub powell_iterations: u32,
    /// Cap on the loss evaluations of the joint optimisation.
    pub max_evaluations: u32,
    /// Cap on the loss evaluations of one line search.
    pub line_evaluations: u32,
    /// Weight step variables per output channel's grid scaled together (common protocol) or one
    /// grid per layer (the paper's layer-wise quantization).
    pub weights: Granularity,
}

impl Default for LapqSettings {
    fn default() -> Self {
        LapqSettings {
            norms: (0..10).map(|k| 2.0 + 2.0 * k as f64 / 9.0).collect(),
            search_points: 50,
            sample: 16_384,
            powell_iterations: 1,
            max_evaluations: 300,
            line_evaluations: 8,
            weights: Granularity::PerChannel,
        }
    }
}

impl LapqSettings {
    pub(crate) fn validate(&self, key: &str) -> std::result::Result<(), String> {
        if self.norms.len() < 3 || self.norms.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(format!(
                "{key}.norms: need at least three positive norms, got {:?}",
                self.norms
            ));
        }
        for (k, v) in [
            ("search_points", self.search_points),
            ("sample", self.sample),
            ("line_evaluations", self.line_evaluations),
        ] {
            if v == 0 {
                return Err(format!("{key}.{k}: must be at least 1"));
            }
        }
        Ok(())
    }
}

/// What LAPQ did.
#[derive(Clone, Debug, PartialEq)]
pub struct LapqTrace {
    /// (p, calibration loss) of the layer-wise initialisations.
    pub sweep: Vec<(f64, f64)>,
    /// The fitted `p*`.
    pub p_star: f64,
    /// Calibration loss at the start of the joint search, then after each accepted move.
    pub losses: Vec<f64>,
    /// Loss evaluations of the joint search.
    pub evaluations: u64,
}

/// Least-squares parabola `a p^2 + b p + c` through the points; returns `(a, b, c)`.
fn fit_parabola(pts: &[(f64, f64)]) -> (f64, f64, f64) {
    let m = pts.iter().map(|p| p.0).sum::<f64>() / pts.len() as f64;
    // In the centred variable u = p - m: normal equations of [u^2, u, 1].
    let mut s = [[0f64; 4]; 3];
    for &(p, y) in pts {
        let u = p - m;
        let row = [u * u, u, 1.0];
        for r in 0..3 {
            for c in 0..3 {
                s[r][c] += row[r] * row[c];
            }
            s[r][3] += row[r] * y;
        }
    }
    // Gaussian elimination with partial pivoting.
    for c in 0..3 {
        let piv = (c..3)
            .max_by(|&a, &b| s[a][c].abs().total_cmp(&s[b][c].abs()))
            .unwrap();
        s.swap(c, piv);
        for r in 0..3 {
            if r != c && s[c][c] != 0.0 {
                let f = s[r][c] / s[c][c];
                let pivot = s[c];
                for (x, p) in s[r][c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let sol: Vec<f64> = (0..3)
        .map(|r| {
            if s[r][r] != 0.0 {
                s[r][3] / s[r][r]
            } else {
                0.0
            }
        })
        .collect();
    let (a, bu, cu) = (sol[0], sol[1], sol[2]);
    // Back to p: a (p - m)^2 + bu (p - m) + cu.
    (a, bu - 2.0 * a * m, a * m * m - bu * m + cu)
}

/// The minimiser of the fitted parabola within the sampled range, or the best sample when the
/// fit is not convex.
fn fitted_minimum(pts: &[(f64, f64)]) -> f64 {
    let (a, b, _) = fit_parabola(pts);
    let (lo, hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.0), h.max(p.0))
        });
    if a > 0.0 && a.is_finite() && b.is_finite() {
        (-b / (2.0 * a)).clamp(lo, hi)
    } else {
        pts.iter().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap().0
    }
}

/// The Lp-initialised grids of every layer, one set per norm of `norms`: per layer, the weight
/// grid of each output channel, and the input grid.
type NormGrids = Vec<(Vec<Vec<Option<Uniform>>>, Vec<Option<Uniform>>)>;

fn lp_grids(
    model: &QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &LapqSettings,
    norms: &[f64],
    report: &mut MethodReport,
) -> Result<NormGrids> {
    let a_bits: Vec<u8> = config.iter().map(|p| p.a).collect();
    let searches = mmse::input_searches(
        model,
        calib,
        &a_bits,
        s.search_points,
        norms,
        Some(s.sample as usize),
        report,
    )?;
    let mut weights = vec![];
    for (i, p) in config.iter().enumerate() {
        let w = host(model.folded_layer(i).0)?;
        let rows = model.arch.layers[i].out_ch;
        weights.push(mmse::weight_grids(
            &w,
            rows,
            p.w,
            s.search_points,
            norms,
            s.weights,
        ));
    }
    Ok((0..norms.len())
        .map(|j| {
            let w = weights
                .iter()
                .map(|layer| layer.iter().map(|g| g.as_ref().map(|g| g[j])).collect())
                .collect();
            let a = searches
                .iter()
                .map(|sr| sr.as_ref().map(|sr| sr.best(j)))
                .collect();
            (w, a)
        })
        .collect())
}

/// One variable of the joint search: the step multiplier of layer `layer`'s weights or input.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Var {
    Weight(usize),
    Input(usize),
}

impl Var {
    fn layer(&self) -> usize {
        match *self {
            Var::Weight(i) | Var::Input(i) => i,
        }
    }
}

/// The network's calibration loss for method layers, evaluated from the first changed stage
/// on with the stage inputs of the current point cached.
struct Loss<'a> {
    model: &'a QuantModel,
    calib: &'a [Batch],
    labels: Vec<Tensor>,
    stage_of: Vec<usize>,
    /// Per batch, the input of every stage under `plan`.
    stage_in: Vec<Vec<Tensor>>,
    plan: Vec<Option<MethodLayer>>,
    value: f64,
    evaluations: u64,
}

impl<'a> Loss<'a> {
    fn new(
        model: &'a QuantModel,
        calib: &'a [Batch],
        plan: Vec<Option<MethodLayer>>,
    ) -> Result<Self> {
        let labels = calib
            .iter()
            .map(|b| Tensor::from_vec(b.labels.clone(), b.labels.len(), model.device()))
            .collect::<Result<Vec<_>>>()?;
        let mut l = Loss {
            model,
            calib,
            labels,
            stage_of: model.arch.stage_of_layer(),
            stage_in: calib.iter().map(|b| vec![b.images.clone()]).collect(),
            plan,
            value: 0.0,
            evaluations: 0,
        };
        let plan = l.plan.clone();
        let (v, cache) = l.eval(&plan, 0)?;
        l.value = v;
        l.stage_in = cache;
        Ok(l)
    }

    /// Mean cross-entropy of `plan` (equal to the current plan before layer `first`), and the
    /// stage inputs it computed.
    fn eval(
        &mut self,
        plan: &[Option<MethodLayer>],
        first: usize,
    ) -> Result<(f64, Vec<Vec<Tensor>>)> {
        self.evaluations += 1;
        let arch = &self.model.arch;
        let s0 = self.stage_of[first];
        let (mut total, mut count) = (0f64, 0usize);
        let mut cache = Vec::with_capacity(self.calib.len());
        for (b, batch) in self.calib.iter().enumerate() {
            let mut ins: Vec<Tensor> = self.stage_in[b][..=s0].to_vec();
            let mut x = ins[s0].clone();
            for st in s0..arch.stages.len() {
                if st > s0 {
                    ins.push(x.clone());
                }
                x = arch.run_stage(
                    st,
                    &x,
                    &mut PlanRunner {
                        model: self.model,
                        plan,
                        observe: None,
                    },
                )?;
            }
            let ce = candle_nn::loss::cross_entropy(&x, &self.labels[b])?.to_scalar::<f32>()?;
            total += ce as f64 * batch.labels.len() as f64;
            count += batch.labels.len();
            cache.push(ins);
        }
        Ok((total / count.max(1) as f64, cache))
    }
}

/// The method layers of the point `x` (step multipliers of `vars`) from the base grids.
struct Point<'a> {
    model: &'a QuantModel,
    config: &'a [BitPair],
    weights: &'a [Vec<Option<Uniform>>],
    inputs: &'a [Option<Uniform>],
    bc: BiasCorrection,
}

impl Point<'_> {
    fn weight(&self, i: usize, m: f64) -> Result<Tensor> {
        let w = host(self.model.folded_layer(i).0)?;
        let grids: Vec<Option<Uniform>> = self.weights[i]
            .iter()
            .map(|g| g.map(|g| scaled(g, m)))
            .collect();
        let q = mpq_quant::uniform::quantize_rows(&w, &grids);
        let _ = self.config;
        finish_weight(self.model, i, &w, q, self.bc)
    }

    fn input(&self, i: usize, m: f64) -> Option<InputQuant> {
        self.inputs[i].map(|g| InputQuant::Uniform(scaled(g, m)))
    }

    /// Every layer at the multipliers `x`.
    fn plan(&self, vars: &[Var], x: &[f64]) -> Result<Vec<Option<MethodLayer>>> {
        let n = self.model.n_layers();
        let (mut mw, mut ma) = (vec![1.0; n], vec![1.0; n]);
        for (v, &m) in vars.iter().zip(x) {
            match *v {
                Var::Weight(i) => mw[i] = m,
                Var::Input(i) => ma[i] = m,
            }
        }
        (0..n)
            .map(|i| {
                Ok(Some(MethodLayer {
                    weight: self.weight(i, mw[i])?,
                    input: self.input(i, ma[i]),
                }))
            })
            .collect()
    }
}

/// `g` with its step multiplied by `m`, codes unchanged.
fn scaled(g: Uniform, m: f64) -> Uniform {
    Uniform {
        scale: (g.scale as f64 * m) as f32,
        ..g
    }
}

/// Smallest step multiplier a search may try.
const MIN_MULTIPLIER: f64 = 0.02;

/// Powell's method on the multipliers, from `x0 = 1`.
struct Powell<'a, 'b> {
    loss: Loss<'a>,
    point: &'b Point<'a>,
    vars: Vec<Var>,
    x: Vec<f64>,
    s: &'b LapqSettings,
    losses: Vec<f64>,
    joint_evals: u64,
}

/// A loss with the plan and the stage-input cache that gave it.
type Candidate = (f64, Vec<Option<MethodLayer>>, Vec<Vec<Tensor>>);
/// A line-search sample: its `t`, then its [`Candidate`]'s parts.
type Probe = (f64, f64, Vec<Option<MethodLayer>>, Vec<Vec<Tensor>>);

impl Powell<'_, '_> {
    fn budget_left(&self) -> bool {
        self.joint_evals < self.s.max_evaluations as u64
    }

    /// The loss at `x + t d`, or `None` when out of budget or a multiplier leaves its range.
    fn try_at(&mut self, d: &[f64], t: f64) -> Result<Option<Candidate>> {
        if !self.budget_left() {
            return Ok(None);
        }
        let y: Vec<f64> = self.x.iter().zip(d).map(|(a, b)| a + t * b).collect();
        if y.iter().any(|&m| !(m >= MIN_MULTIPLIER && m.is_finite())) {
            return Ok(None);
        }
        let changed: Vec<usize> = (0..d.len()).filter(|&k| d[k] != 0.0).collect();
        let first = changed
            .iter()
            .map(|&k| self.vars[k].layer())
            .min()
            .unwrap_or(0);
        let mut plan = self.loss.plan.clone();
        for &k in &changed {
            let i = self.vars[k].layer();
            let layer = plan[i].as_mut().expect("a full plan");
            match self.vars[k] {
                Var::Weight(_) => layer.weight = self.point.weight(i, y[k])?,
                Var::Input(_) => layer.input = self.point.input(i, y[k]),
            }
        }
        self.joint_evals += 1;
        let (v, cache) = self.loss.eval(&plan, first)?;
        Ok(Some((v, plan, cache)))
    }

    /// Line search along `d` from the current point: the best `t` found within the budget,
    /// taken only if its loss is strictly lower. Returns the decrease.
    fn line(&mut self, d: &[f64]) -> Result<f64> {
        let f0 = self.loss.value;
        let mut best: Option<Probe> = None;
        let mut left = self.s.line_evaluations as usize;
        let sample = |me: &mut Self,
                      t: f64,
                      left: &mut usize,
                      best: &mut Option<_>|
         -> Result<Option<f64>> {
            if *left == 0 {
                return Ok(None);
            }
            let Some((v, plan, cache)) = me.try_at(d, t)? else {
                return Ok(None);
            };
            *left -= 1;
            let better = match best {
                Some((_, bv, _, _)) => v < *bv,
                None => true,
            };
            if better {
                *best = Some((t, v, plan, cache));
            }
            Ok(Some(v))
        };
        // Bracket: a step each way, then expand the better side while it improves.
        let h = 0.1;
        let fp = sample(self, h, &mut left, &mut best)?;
        let fm = sample(self, -h, &mut left, &mut best)?;
        let (dir, mut fa) = match (fp, fm) {
            (Some(a), Some(b)) if a < f0 || b < f0 => {
                if a <= b {
                    (1.0, a)
                } else {
                    (-1.0, b)
                }
            }
            (Some(a), None) if a < f0 => (1.0, a),
            (None, Some(b)) if b < f0 => (-1.0, b),
            _ => (0.0, f0),
        };
        let (mut lo, mut hi);
        if dir != 0.0 {
            // Expand by the golden ratio until the loss rises.
            let (mut prev, mut cur) = (0.0, h);
            loop {
                let next = cur * 2.618;
                match sample(self, dir * next, &mut left, &mut best)? {
                    Some(v) if v < fa => {
                        prev = cur;
                        cur = next;
                        fa = v;
                    }
                    Some(_) => {
                        lo = prev;
                        hi = next;
                        break;
                    }
                    None => {
                        lo = prev;
                        hi = cur;
                        break;
                    }
                }
            }
            lo *= dir;
            hi *= dir;
        } else {
            lo = -h;
            hi = h;
        }
        // Golden-section refinement of the bracket around the best point so far.
        let g = 0.381_966;
        while left > 0 && self.budget_left() {
            let bt = best.as_ref().map(|b| b.0).unwrap_or(0.0);
            let (a, b) = (lo.min(hi), lo.max(hi));
            // Probe the larger side of the best point.
            let t = if b - bt > bt - a {
                bt + g * (b - bt)
            } else {
                bt - g * (bt - a)
            };
            let bv = best.as_ref().map(|b| b.1).unwrap_or(f0);
            match sample(self, t, &mut left, &mut best)? {
                Some(v) if v < bv => {
                    if t > bt {
                        lo = bt;
                        hi = b;
                    } else {
                        lo = a;
                        hi = bt;
                    }
                }
                Some(_) => {
                    if t > bt {
                        lo = a;
                        hi = t;
                    } else {
                        lo = t;
                        hi = b;
                    }
                }
                None => break,
            }
        }
        match best {
            Some((t, v, plan, cache)) if v < f0 => {
                for (x, dk) in self.x.iter_mut().zip(d) {
                    *x += t * dk;
                }
                self.loss.plan = plan;
                self.loss.stage_in = cache;
                self.loss.value = v;
                self.losses.push(v);
                Ok(f0 - v)
            }
            _ => Ok(0.0),
        }
    }

    /// Powell's sweeps (Numerical Recipes' variant: the new direction replaces the one of
    /// largest decrease when the extrapolation test passes).
    fn run(&mut self) -> Result<()> {
        let d = self.vars.len();
        let mut dirs: Vec<Vec<f64>> = (0..d)
            .map(|k| (0..d).map(|j| if j == k { 1.0 } else { 0.0 }).collect())
            .collect();
        for _ in 0..self.s.powell_iterations {
            if !self.budget_left() {
                break;
            }
            let (x_start, f_start) = (self.x.clone(), self.loss.value);
            let (mut big, mut big_k) = (0.0, 0);
            for (k, dir) in dirs.clone().iter().enumerate() {
                let drop = self.line(dir)?;
                if drop > big {
                    big = drop;
                    big_k = k;
                }
            }
            let new_dir: Vec<f64> = self.x.iter().zip(&x_start).map(|(a, b)| a - b).collect();
            if new_dir.iter().all(|v| *v == 0.0) || !self.budget_left() {
                break;
            }
            // Extrapolated point: worth a line along the new direction?
            let f_now = self.loss.value;
            if let Some((fe, _, _)) = self.try_at(&new_dir, 1.0)? {
                let t = 2.0 * (f_start - 2.0 * f_now + fe) * (f_start - f_now - big).powi(2)
                    - big * (f_start - fe).powi(2);
                if fe < f_start && t < 0.0 {
                    self.line(&new_dir)?;
                    dirs.remove(big_k);
                    dirs.push(new_dir);
                }
            }
        }
        Ok(())
    }
}

/// LAPQ's layers for `config`, and its trace.
pub(crate) fn layers(
    model: &QuantModel,
    config: &[BitPair],
    calib: &[Batch],
    s: &LapqSettings,
    bc: BiasCorrection,
    report: &mut MethodReport,
) -> Result<(Vec<MethodLayer>, LapqTrace)> {
    let n = model.n_layers();
    // 1. Layer-wise Lp initialisations and their losses.
    let all = lp_grids(model, config, calib, s, &s.norms, report)?;
    let mut sweep = vec![];
    for (j, (w, a)) in all.iter().enumerate() {
        let point = Point {
            model,
            config,
            weights: w,
            inputs: a,
            bc,
        };
        let plan = point.plan(&[], &[])?;
        let l = Loss::new(model, calib, plan)?;
        report.forward_passes += calib.len() as u64;
        sweep.push((s.norms[j], l.value));
    }
    // 2. The quadratic fit's p*, and its grids.
    let p_star = fitted_minimum(&sweep);
    let (w, a) = lp_grids(model, config, calib, s, &[p_star], report)?.remove(0);
    let point = Point {
        model,
        config,
        weights: &w,
        inputs: &a,
        bc,
    };
    // 3. Powell over the step multipliers.
    let vars: Vec<Var> = (0..n)
        .flat_map(|i| {
            let wv = w[i].iter().any(Option::is_some).then_some(Var::Weight(i));
            let av = a[i].is_some().then_some(Var::Input(i));
            [wv, av]
        })
        .flatten()
        .collect();
    let loss = Loss::new(model, calib, point.plan(&[], &[])?)?;
    report.forward_passes += calib.len() as u64;
    let start = loss.value;
    let mut powell = Powell {
        loss,
        point: &point,
        x: vec![1.0; vars.len()],
        vars,
        s,
        losses: vec![start],
        joint_evals: 0,
    };
    powell.run()?;
    report.iterations += powell.joint_evals;
    report.forward_passes += powell.joint_evals * calib.len() as u64;
    report.notes.push(format!(
        "lapq: p* = {p_star:.3}; calibration loss {start:.4} -> {:.4} in {} evaluations",
        powell.loss.value, powell.joint_evals
    ));
    let trace = LapqTrace {
        sweep,
        p_star,
        losses: powell.losses.clone(),
        evaluations: powell.joint_evals,
    };
    let layers = powell
        .loss
        .plan
        .into_iter()
        .map(|l| l.expect("a full plan"))
        .collect();
    Ok((layers, trace))
}

/// LAPQ under `cfg` for `config`, returning its layers and trace without installing them.
pub fn run(
    model: &QuantModel,
    cfg: &PtqConfig,
    config: &[BitPair],
    calib: &[Batch],
) -> Result<(Vec<MethodLayer>, LapqTrace, MethodReport)> {
    let ((l, t), report) = super::timed(super::MethodName::Lapq, |report| {
        layers(
            model,
            config,
            calib,
            &cfg.lapq,
            cfg.bias_correction(),
            report,
        )
    })?;
    Ok((l, t, report))
}

/// Mean cross-entropy of the network with `layers` on `batches` (a full forward pass).
pub fn calibration_loss(
    model: &QuantModel,
    layers: &[MethodLayer],
    batches: &[Batch],
) -> Result<f64> {
    let plan: Vec<Option<MethodLayer>> = layers.iter().cloned().map(Some).collect();
    Ok(Loss::new(model, batches, plan)?.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parabola_fit_recovers_a_parabola_and_its_minimum() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|k| {
                let p = 2.0 + 2.0 * k as f64 / 9.0;
                (p, 0.7 * (p - 3.1).powi(2) + 1.25)
            })
            .collect();
        let (a, b, c) = fit_parabola(&pts);
        assert!((a - 0.7).abs() < 1e-9 && (b + 2.0 * 0.7 * 3.1).abs() < 1e-9);
        assert!((c - (0.7 * 3.1 * 3.1 + 1.25)).abs() < 1e-9);
        assert!((fitted_minimum(&pts) - 3.1).abs() < 1e-9);
        // Concave: the best sample.
        let conc: Vec<(f64, f64)> = pts.iter().map(|&(p, y)| (p, -y)).collect();
        assert_eq!(fitted_minimum(&conc), 2.0);
        // Minimum outside the range: clamped.
        let out: Vec<(f64, f64)> = pts.iter().map(|&(p, _)| (p, (p - 9.0).powi(2))).collect();
        assert_eq!(fitted_minimum(&out), 4.0);
    }
}
