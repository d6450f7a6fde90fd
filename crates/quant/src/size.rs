//! Size accounting of spec section 3: model size in bits counts weights only (biases stay FP32
//! and are not counted), relative size is against 32-bit weights.

/// `sum_i n_i * w_bits(i)`.
pub fn size_bits(n_weights: &[u64], w_bits: impl Fn(usize) -> u8) -> u64 {
    n_weights
        .iter()
        .enumerate()
        .map(|(i, &n)| n * w_bits(i) as u64)
        .sum()
}

/// The paper's W-comp: `size_bits / (32 * sum_i n_i)`.
pub fn rel_size(size_bits: u64, n_weights: &[u64]) -> f64 {
    size_bits as f64 / (32.0 * n_weights.iter().sum::<u64>() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_sizes() {
        let n = [100, 300];
        let bits = size_bits(&n, |i| if i == 1 { 4 } else { 8 });
        assert_eq!(bits, 800 + 1200);
        assert_eq!(rel_size(bits, &n), 2000.0 / 12800.0);
        assert_eq!(rel_size(size_bits(&n, |_| 8), &n), 0.25);
    }
}
