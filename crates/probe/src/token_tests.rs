//! Issue 35 §3, the probe's Transformer readings: the rank-collapse
//! residual at a block output of tokens and each head's attention entropy.

use crate::{attention_entropy, rank_collapse, ProbeError};
use tch::{Device, Kind, Tensor};

const OPTS: (Kind, Device) = (Kind::Float, Device::Cpu);

/// A tensor's elements as float64, row-major.
fn values(t: &Tensor) -> Vec<f64> {
    Vec::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// The residual from first principles, on the host, by another route than
/// `rank_collapse`'s: X − 1·x̄ᵀ is orthogonal to 1·x̄ᵀ, so ‖X − 1·x̄ᵀ‖² =
/// ‖X‖² − T·‖x̄‖² (Pythagoras), and the residual is √(1 − T‖x̄‖²/‖X‖²),
/// averaged over the batch. Loops over a float64 copy, as numpy would.
fn reference_rank1(x: &Tensor) -> f64 {
    let [b, t, d] = [0, 1, 2].map(|k| x.size()[k] as usize);
    let v = values(x);
    let mut sum = 0.0;
    for e in 0..b {
        let rows = &v[e * t * d..(e + 1) * t * d];
        let total: f64 = rows.iter().map(|a| a * a).sum();
        let mean_sq: f64 = (0..d)
            .map(|j| {
                let m = (0..t).map(|i| rows[i * d + j]).sum::<f64>() / t as f64;
                m * m
            })
            .sum();
        sum += (1.0 - t as f64 * mean_sq / total).max(0.0).sqrt();
    }
    sum / b as f64
}

/// Entropy of each head from first principles: −Σ p ln p per query row
/// (skipping p = 0), averaged over batch and queries.
fn reference_entropy(p: &Tensor) -> Vec<f64> {
    let [b, h, q, k] = [0, 1, 2, 3].map(|i| p.size()[i] as usize);
    let v = values(p);
    (0..h)
        .map(|head| {
            let mut sum = 0.0;
            for e in 0..b {
                for row in 0..q {
                    let at = ((e * h + head) * q + row) * k;
                    sum -= v[at..at + k]
                        .iter()
                        .filter(|&&p| p > 0.0)
                        .map(|p| p * p.ln())
                        .sum::<f64>();
                }
            }
            sum / (b * q) as f64
        })
        .collect()
}

/// Dong, Cordonnier & Loukas (2021): a token matrix whose rows are all
/// the same vector is exactly rank 1 of the form 1·x̄ᵀ, residual 0 (here
/// within 1e-7, a different vector per example); tokens of mean 0 (each
/// token and its negative) have x̄ = 0, residual 1; a random matrix reads
/// the float64 reference above; an example of zeros is 0/0, NaN.
#[test]
fn rank_collapse_reads_rank_one_zero_mean_and_a_reference() {
    tch::manual_seed(11);
    let token = Tensor::randn([6, 1, 16], OPTS) * 3.0 + 0.5;
    let collapsed = token.expand([6, 9, 16], false).contiguous();
    let half = Tensor::randn([6, 4, 16], OPTS);
    let zero_mean = Tensor::cat(&[&half, &half.neg()], 1);
    let random = Tensor::randn([5, 7, 12], OPTS) * 0.3 + Tensor::randn([1, 1, 12], OPTS);
    let with_zero = Tensor::randn([3, 4, 5], OPTS);
    let _ = with_zero.get(1).fill_(0.0);
    let r = rank_collapse(&[collapsed, zero_mean, random.shallow_clone(), with_zero]).unwrap();
    assert!(r[0].abs() <= 1e-7, "{}", r[0]);
    assert!((r[1] - 1.0).abs() <= 1e-12, "{}", r[1]);
    let want = reference_rank1(&random);
    assert!(want > 0.1 && want < 0.9, "{want}: not a trivial case");
    assert!((r[2] - want).abs() <= 1e-9, "{} vs {want}", r[2]);
    assert!(r[3].is_nan(), "{}", r[3]);
    // The batch's mean is the mean of each example's residual.
    let one: Vec<f64> = (0..5)
        .map(|e| rank_collapse(&[random.narrow(0, e, 1)]).unwrap()[0])
        .collect();
    assert!((one.iter().sum::<f64>() / 5.0 - r[2]).abs() <= 1e-12);
    assert!(rank_collapse(&[]).unwrap().is_empty());
    assert!(matches!(
        rank_collapse(&[Tensor::ones([2, 3], OPTS)]),
        Err(ProbeError::Shape(_))
    ));
}

/// Uniform attention over K keys has entropy ln K, attention to one key 0,
/// and a causal mask's uniform rows (query i attends to keys 0..=i) the
/// mean of ln(i + 1) over the queries. Heads are kept apart: one tensor
/// with a uniform head, a causal one, a one-hot one and a softmax of
/// random scores reads each head's own value (the last against the
/// float64 reference).
#[test]
fn attention_entropy_reads_uniform_one_hot_causal_per_head() {
    tch::manual_seed(12);
    let (b, q, k) = (3, 6, 6);
    let uniform = Tensor::full([b, 1, q, k], 1.0 / k as f64, OPTS);
    let causal = Tensor::ones([q, k], OPTS).tril(0);
    let causal = (&causal / causal.sum_dim_intlist([1i64].as_slice(), true, Kind::Float))
        .expand([b, 1, q, k], false);
    let one_hot = Tensor::randint(k, [b, 1, q], (Kind::Int64, Device::Cpu))
        .one_hot(k)
        .to_kind(Kind::Float);
    let random = (Tensor::randn([b, 1, q, k], OPTS) * 2.0).softmax(-1, Kind::Float);
    let probs = Tensor::cat(&[uniform, causal, one_hot, random.shallow_clone()], 1);
    let e = attention_entropy(&[probs]).unwrap();
    assert_eq!(e.len(), 1);
    let e = &e[0];
    assert_eq!(e.len(), 4, "one per head");
    assert!((e[0] - (k as f64).ln()).abs() <= 1e-6, "uniform: {}", e[0]);
    let causal_want = (1..=q).map(|i| (i as f64).ln()).sum::<f64>() / q as f64;
    assert!(
        (e[1] - causal_want).abs() <= 1e-6,
        "causal: {} vs {causal_want}",
        e[1]
    );
    assert_eq!(e[2], 0.0, "one-hot");
    let want = reference_entropy(&random)[0];
    assert!((e[3] - want).abs() <= 1e-9, "{} vs {want}", e[3]);
    assert!(matches!(
        attention_entropy(&[Tensor::ones([2, 3, 4], OPTS)]),
        Err(ProbeError::Shape(_))
    ));
}
