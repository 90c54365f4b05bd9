//! A synthetic image task for tests and quick CNN runs: the class of an
//! image is its texture.
//!
//! Each class owns a random `k × k` pattern per channel (k = 4). An image
//! tiles its class's pattern over the whole frame, shifted by a random phase
//! and scaled by a random contrast, plus Gaussian noise. Position carries no
//! information, so a CNN with global average pooling can learn it, and a
//! tiny one does in a few hundred steps.

use crate::rng::SplitMix64;
use crate::{DataError, Dataset};
use tch::Tensor;

/// Settings of the texture task.
#[derive(Debug, Clone, PartialEq)]
pub struct TextureSpec {
    pub samples: usize,
    pub test_samples: usize,
    pub classes: usize,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Noise std relative to the patterns' unit std.
    pub noise: f64,
    pub seed: u64,
}

const K: usize = 4;

/// Generates the texture task (see the module docs).
pub fn synthetic_images(spec: &TextureSpec) -> Result<Dataset, DataError> {
    let invalid = |field, message: &str| DataError::Invalid {
        field,
        message: message.to_string(),
    };
    if spec.samples == 0 || spec.test_samples == 0 {
        return Err(invalid("samples", "both splits need at least one example"));
    }
    if spec.classes < 2 {
        return Err(invalid("classes", "must be at least 2"));
    }
    let [c, h, w] = spec.shape;
    if c == 0 || h == 0 || w == 0 {
        return Err(invalid("shape", "no dimension may be 0"));
    }
    let mut rng = SplitMix64::new(spec.seed);
    let patterns: Vec<f32> = (0..spec.classes * c * K * K)
        .map(|_| rng.normal())
        .collect();
    let n = spec.samples + spec.test_samples;
    let mut x = vec![0f32; n * c * h * w];
    let mut y = vec![0i64; n];
    for (i, img) in x.chunks_exact_mut(c * h * w).enumerate() {
        let class = i % spec.classes;
        y[i] = class as i64;
        let (dy, dx) = (rng.below(K), rng.below(K));
        let contrast = 0.5 + rng.uniform() as f32;
        let pattern = &patterns[class * c * K * K..(class + 1) * c * K * K];
        for ch in 0..c {
            for r in 0..h {
                for col in 0..w {
                    let p = pattern[ch * K * K + ((r + dy) % K) * K + (col + dx) % K];
                    img[(ch * h + r) * w + col] = contrast * p + spec.noise as f32 * rng.normal();
                }
            }
        }
    }
    let x = Tensor::from_slice(&x).view([n as i64, c as i64, h as i64, w as i64]);
    let y = Tensor::from_slice(&y);
    Ok(Dataset::from_rows(
        "synthetic-images",
        x,
        y,
        spec.samples,
        vec![c as i64, h as i64, w as i64],
        spec.classes as i64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_balance_and_determinism() {
        let spec = TextureSpec {
            samples: 40,
            test_samples: 8,
            classes: 4,
            shape: [2, 8, 8],
            noise: 0.5,
            seed: 1,
        };
        let a = synthetic_images(&spec).unwrap();
        assert_eq!(a.train.x.size(), vec![40, 2, 8, 8]);
        assert_eq!(
            a.train.y.bincount::<Tensor>(None, 4).min().int64_value(&[]),
            10
        );
        let b = synthetic_images(&spec).unwrap();
        assert!(a.train.x.equal(&b.train.x));
    }

    /// Without noise, two images of one class are the same texture up to
    /// phase and contrast, so their sorted pixel values are proportional;
    /// a different class's are not.
    #[test]
    fn the_class_is_the_texture() {
        let spec = TextureSpec {
            samples: 4,
            test_samples: 1,
            classes: 2,
            shape: [1, 8, 8],
            noise: 0.0,
            seed: 2,
        };
        let d = synthetic_images(&spec).unwrap();
        let sorted = |i: i64| {
            let v = d.train.x.get(i).flatten(0, -1).sort(0, false).0;
            &v / v.norm()
        };
        // Images 0 and 2 are class 0; image 1 is class 1.
        assert!(sorted(0).allclose(&sorted(2), 1e-4, 1e-5, false));
        assert!(!sorted(0).allclose(&sorted(1), 1e-2, 1e-3, false));
    }
}
