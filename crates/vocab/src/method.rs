//! The post-training quantization methods a run can apply (`mpq_models::ptq`).
crate::names! {
    /// A post-training quantization method: how each layer's weights are rounded and its input
    /// quantized.
    pub enum MethodName ("method") {
        /// The spec's quantizer: per-channel min-max weights and MSE-calibrated inputs on
        /// power-of-two grids, round to nearest.
        Rtn = "rtn",
        /// Choukroun et al. 2019: steps that minimise the quantization MSE.
        Mmse = "mmse",
        /// Banner et al. 2019: analytical clipping, per-channel bit allocation, bias correction.
        Aciq = "aciq",
        /// Nagel et al. 2020: learned rounding by layer-wise output reconstruction.
        AdaRound = "adaround",
        /// Nahshan et al. 2019: Lp-norm initialisation, then a joint search of the steps.
        Lapq = "lapq",
    }
}

impl Default for MethodName {
    /// The spec's quantizer.
    fn default() -> MethodName {
        MethodName::Rtn
    }
}
