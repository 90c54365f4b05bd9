//! The forward reading q of a probe point's output: each unit's variance
//! across the batch, averaged over the units, in one read of the tensor.
//!
//! libtorch's `var` over dim 0 did the same with Welford's update in
//! float64, but its reduction over the batch dimension of a feature map
//! ran about 25 times as long as a plain read of the tensor: in `make
//! bench-kernels` it took a CNN-20 probe step from about 10 ms to about
//! 230 ms. Here every row of the batch is summed into per-unit float64
//! sums around the first row's values (the shifted-data algorithm), so a
//! collapsed layer (a spread of 1e-6 around a mean of 0.3) keeps its
//! digits: each difference of two float32 values is exact in float64.

use tch::Tensor;

use crate::read::{is_dense, readable};
use crate::threads::{on_threads, thread_count};

/// The mean over units of the population variance across dim 0 of `t`, a
/// float32 tensor in host memory whose batch dimension is outermost in
/// memory (contiguous, or channels-last); `None` for any other tensor
/// (the caller then asks libtorch), and NaN for a batch of fewer than 2.
pub fn batch_variance_mean(t: &Tensor) -> Option<f64> {
    if !readable(t) || t.dim() < 1 {
        return None;
    }
    let (size, stride) = (t.size(), t.stride());
    let batch = size[0] as usize;
    let numel = t.numel();
    if batch < 2 {
        return Some(f64::NAN);
    }
    let units = numel / batch;
    // Each row of the batch is `units` consecutive floats, the units in one
    // order for every row (any order: the mean over units does not care).
    if !is_dense(&size, &stride) || stride[0] as usize != units || units == 0 {
        return None;
    }
    // SAFETY: `readable` checked a defined float32 tensor in host memory;
    // a dense layout holds exactly `numel` floats from its data pointer;
    // `t` keeps the storage alive for the borrow, and nothing writes it
    // meanwhile (the probe reads outputs after backward).
    let values: &[f32] = unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, numel) };
    let threads = thread_count(numel).min(units);
    let sums = on_threads(threads, |part| {
        let lo = units * part / threads;
        let hi = units * (part + 1) / threads;
        let shift = &values[lo..hi];
        let mut s1 = vec![0f64; hi - lo];
        let mut s2 = vec![0f64; hi - lo];
        for row in values.chunks_exact(units).skip(1) {
            for (((a, b), &x), &s) in s1
                .iter_mut()
                .zip(s2.iter_mut())
                .zip(&row[lo..hi])
                .zip(shift)
            {
                let d = f64::from(x) - f64::from(s);
                *a += d;
                *b += d * d;
            }
        }
        let n = batch as f64;
        s1.iter()
            .zip(&s2)
            .map(|(a, b)| ((b - a * a / n) / n).max(0.0))
            .sum::<f64>()
    });
    Some(sums.iter().sum::<f64>() / units as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// libtorch's own float64 variance over the batch, averaged over units:
    /// the definition q had before this read.
    fn reference(t: &Tensor) -> f64 {
        t.to_kind(Kind::Double)
            .var_correction([0i64].as_slice(), tch::Scalar::int(0), false)
            .mean(Kind::Double)
            .double_value(&[])
    }

    /// Poole et al.'s q over a batch, against libtorch in float64: an MLP's
    /// output, a feature map in both layouts, and a collapsed layer (a
    /// spread of 1e-6 around 0.3, where float32 sums would keep no digit).
    #[test]
    fn the_batch_variance_matches_libtorch_in_float64() {
        tch::manual_seed(0);
        let mlp = Tensor::randn([64, 40], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let map = Tensor::randn([16, 8, 7, 7], (Kind::Float, Device::Cpu));
        let nhwc = map.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        let collapsed = Tensor::randn([32, 50], (Kind::Float, Device::Cpu)) * 1e-6 + 0.3;
        for t in [&mlp, &map, &nhwc, &collapsed] {
            let (got, want) = (batch_variance_mean(t).unwrap(), reference(t));
            assert!((got - want).abs() <= 1e-9 * want, "{got} against {want}");
        }
        let one = Tensor::ones([1, 5], (Kind::Float, Device::Cpu));
        assert!(batch_variance_mean(&one).unwrap().is_nan());
    }

    /// Anything else is left to libtorch: a transposed matrix (the batch is
    /// not outermost), a slice with gaps, a float64 tensor.
    #[test]
    fn other_layouts_are_refused() {
        let m = Tensor::randn([8, 6], (Kind::Float, Device::Cpu));
        assert!(batch_variance_mean(&m.tr()).is_none());
        assert!(batch_variance_mean(&m.slice(1, 0, 6, 2)).is_none());
        assert!(batch_variance_mean(&m.to_kind(Kind::Double)).is_none());
    }
}
