//! Chance levels of the token tasks (gradscope-data's `tokens`): the error
//! of the best predictor that ignores its input, which outputs at each
//! position the most likely target there.
//!
//! Where every target token is uniform over the vocabulary (reverse, copy
//! with an offset), that is 1 − 1/vocab. The sort task's targets are the
//! order statistics X_(0) ≤ … ≤ X_(n−1) of n iid uniform tokens, which are
//! far from uniform (the first is most likely 0, the last vocab − 1), so
//! its chance error [`sorted_tokens_error`] is lower and is computed from
//! their distributions.

/// The chance error of predicting, position by position, the `length`
/// iid uniform tokens over `vocab` symbols sorted ascending:
/// 1 − mean over positions i of max_v P(X_(i) = v).
///
/// X_(i) ≤ v exactly when at least i + 1 of the tokens are ≤ v, so
/// P(X_(i) ≤ v) = P(Binomial(length, (v + 1)/vocab) ≥ i + 1), and
/// P(X_(i) = v) is the difference of two such tails. Computed in f64 from
/// the binomial probabilities (log space, so that no coefficient
/// overflows at long lengths), in O(length · vocab). `None` where there is
/// no token to predict (`length` or `vocab` 0).
pub fn sorted_tokens_error(length: usize, vocab: usize) -> Option<f64> {
    if length == 0 || vocab == 0 {
        return None;
    }
    // P(X_(i) ≤ v − 1) for the previous v, and the best P(X_(i) = v) so far.
    let mut below = vec![0.0; length];
    let mut best = vec![0.0f64; length];
    for v in 0..vocab {
        let at_most = at_least_tails(length, (v + 1) as f64 / vocab as f64);
        for (i, b) in best.iter_mut().enumerate() {
            *b = b.max(at_most[i] - below[i]);
        }
        below = at_most;
    }
    Some(1.0 - best.iter().sum::<f64>() / length as f64)
}

/// P(Binomial(n, p) ≥ i + 1) for i in 0..n.
fn at_least_tails(n: usize, p: f64) -> Vec<f64> {
    if p >= 1.0 {
        return vec![1.0; n];
    }
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    // ln C(n, k), built up k by k.
    let mut ln_choose = 0.0;
    let mut pmf = Vec::with_capacity(n + 1);
    for k in 0..=n {
        if k > 0 {
            ln_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        pmf.push((ln_choose + k as f64 * ln_p + (n - k) as f64 * ln_q).exp());
    }
    // Summed from the top, so that small tails keep their digits.
    let mut tails = vec![0.0; n];
    let mut sum = 0.0;
    for k in (1..=n).rev() {
        sum += pmf[k];
        tails[k - 1] = sum;
    }
    tails
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tokens over {0, 1}: the minimum is 0 unless both are 1 (3/4),
    /// the maximum 1 unless both are 0 (3/4), so chance errs 1/4. Three
    /// tokens: min 0 and max 1 with 7/8 each, the median either with 1/2:
    /// 1 − (7/8 + 1/2 + 7/8)/3 = 1/4 again.
    #[test]
    fn small_cases_by_hand() {
        assert!((sorted_tokens_error(2, 2).unwrap() - 0.25).abs() < 1e-15);
        assert!((sorted_tokens_error(3, 2).unwrap() - 0.25).abs() < 1e-15);
        // One token is uniform: 1 − 1/vocab.
        assert!((sorted_tokens_error(1, 8).unwrap() - 0.875).abs() < 1e-15);
        // One symbol: every token is 0, nothing to get wrong.
        assert!(sorted_tokens_error(5, 1).unwrap().abs() < 1e-15);
        assert_eq!(sorted_tokens_error(0, 8), None);
        assert_eq!(sorted_tokens_error(8, 0), None);
    }

    /// Against enumerating every sequence of 4 tokens over 3 symbols
    /// (81 equally likely ones): the mode's count at each sorted position.
    #[test]
    fn matches_enumeration() {
        let (n, v) = (4usize, 3usize);
        let mut counts = vec![vec![0usize; v]; n];
        for code in 0..v.pow(n as u32) {
            let mut tokens: Vec<usize> = (0..n).map(|i| code / v.pow(i as u32) % v).collect();
            tokens.sort();
            for (i, &t) in tokens.iter().enumerate() {
                counts[i][t] += 1;
            }
        }
        let total = v.pow(n as u32) as f64;
        let hits: f64 = counts.iter().map(|c| *c.iter().max().unwrap() as f64).sum();
        let exact = 1.0 - hits / total / n as f64;
        assert!((sorted_tokens_error(n, v).unwrap() - exact).abs() < 1e-14);
    }

    /// Long sequences neither overflow nor lose the probabilities' sum:
    /// the error stays a probability, below the uniform 1 − 1/vocab.
    #[test]
    fn long_sequences_stay_finite() {
        let e = sorted_tokens_error(5000, 16).unwrap();
        assert!(e.is_finite() && e > 0.0 && e < 1.0 - 1.0 / 16.0, "{e}");
    }
}
