//! Preparing a loaded dataset for training: smaller subsets, a held-out
//! split carved from the training set, per-channel normalization, and the
//! pad-crop-flip augmentation of He et al. 2016 (§4.2), drawn from our own
//! [`SplitMix64`] so a minibatch's augmentation is fixed by the run's seed.

use tch::Tensor;

use crate::rng::SplitMix64;
use crate::{DataError, Dataset, DatasetInfo, Split};

/// Zero padding on each side before the random crop (He et al.: 4 pixels).
pub const AUGMENT_PAD: i64 = 4;

impl Dataset {
    /// The first `train` training and the first `test` held-out examples
    /// (`None` keeps a split whole). Asking for 0, or for more than a split
    /// holds, is an error (field `dataset.subset_train` or `subset_test`): fewer
    /// examples than the experiment file says would skew a comparison.
    pub fn subset(self, train: Option<usize>, test: Option<usize>) -> Result<Dataset, DataError> {
        let train_split = take_first(self.train, train, "subset_train")?;
        let test_split = take_first(self.test, test, "subset_test")?;
        Ok(Dataset {
            train: train_split,
            test: test_split,
            ..self
        })
    }

    /// Average-pools every image by `factor` (kernel and stride `factor`,
    /// remainders cropped, as PyTorch's `avg_pool2d`), both splits (field
    /// `dataset.downsample`). Needs `[c, h, w]` inputs of at least
    /// `factor` pixels a side.
    pub fn downsample(self, factor: usize) -> Result<Dataset, DataError> {
        let shape = downsampled_shape(&self.input_shape, factor)?;
        let k = factor as i64;
        let pool = |s: Split| Split {
            x: s.x
                .avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>),
            y: s.y,
        };
        Ok(Dataset {
            train: pool(self.train),
            test: pool(self.test),
            input_shape: shape,
            ..self
        })
    }

    /// Carves the last `n` training examples out as the held-out split,
    /// replacing the test split (as He et al. train CIFAR-10 on 45k and
    /// validate on 5k). `n` must be at least 1 and leave at least one
    /// training example (field `dataset.validation`).
    pub fn split_validation(self, n: usize) -> Result<Dataset, DataError> {
        let len = self.train.len();
        check_validation(len as u64, n)?;
        let n = n as i64;
        let keep = len - n;
        let train = Split {
            x: self.train.x.narrow(0, 0, keep),
            y: self.train.y.narrow(0, 0, keep),
        };
        let test = Split {
            x: self.train.x.narrow(0, keep, n),
            y: self.train.y.narrow(0, keep, n),
        };
        Ok(Dataset {
            train,
            test,
            ..self
        })
    }

    /// Subtracts the mean and divides by the standard deviation of each
    /// channel (dimension 1: channels of `[n, c, h, w]` images, features of
    /// `[n, d]` inputs), both computed on the training split only so nothing
    /// of the held-out split leaks into training, and applied to both
    /// splits. A channel that is constant in training (std 0, e.g. MNIST's
    /// border pixels for an MLP) is only centred.
    pub fn normalize_per_channel(self) -> Dataset {
        let x = &self.train.x;
        if x.dim() < 2 || self.train.is_empty() {
            return self;
        }
        let dims: Vec<i64> = (0..x.dim() as i64).filter(|&d| d != 1).collect();
        let (std, mean) = x.std_mean_dim(dims.as_slice(), false, true);
        let std = std.where_self(&std.gt(0.0), &std.ones_like());
        let apply = |s: Split| Split {
            x: (s.x - &mean) / &std,
            y: s.y,
        };
        Dataset {
            train: apply(self.train),
            test: apply(self.test),
            ..self
        }
    }
}

impl DatasetInfo {
    /// [`Dataset::subset`] on the sizes: the same errors, nothing loaded.
    /// The shape after [`Dataset::downsample`].
    pub fn downsample(self, factor: usize) -> Result<DatasetInfo, DataError> {
        Ok(DatasetInfo {
            input_shape: downsampled_shape(&self.input_shape, factor)?,
            ..self
        })
    }

    pub fn subset(
        self,
        train: Option<usize>,
        test: Option<usize>,
    ) -> Result<DatasetInfo, DataError> {
        let train = match train {
            Some(n) => check_take(self.train as u64, n, "subset_train").map(|()| n)?,
            None => self.train,
        };
        let test = match test {
            Some(n) => check_take(self.test as u64, n, "subset_test").map(|()| n)?,
            None => self.test,
        };
        Ok(DatasetInfo {
            train,
            test,
            ..self
        })
    }

    /// [`Dataset::split_validation`] on the sizes.
    pub fn split_validation(self, n: usize) -> Result<DatasetInfo, DataError> {
        check_validation(self.train as u64, n)?;
        Ok(DatasetInfo {
            train: self.train - n,
            test: n,
            ..self
        })
    }
}

/// Whether `n` held-out examples can be carved from `len` training ones.
fn check_validation(len: u64, n: usize) -> Result<(), DataError> {
    let invalid = |message: String| DataError::Invalid {
        field: "validation",
        message,
    };
    if n == 0 {
        return Err(invalid("must be at least 1".into()));
    }
    if n as u64 >= len {
        return Err(invalid(format!(
            "{n} held-out examples out of {len} training examples leaves none to train on"
        )));
    }
    Ok(())
}

/// Whether the first `n` of a split of `len` can be taken. `field` is the
/// experiment file's name for the setting, so the error points at the line
/// to fix.
fn check_take(len: u64, n: usize, field: &'static str) -> Result<(), DataError> {
    let invalid = |message: String| DataError::Invalid { field, message };
    if n == 0 {
        return Err(invalid("0 examples asked for; need at least 1".into()));
    }
    if n as u64 > len {
        return Err(invalid(format!(
            "{n} examples asked for but the split holds {len}"
        )));
    }
    Ok(())
}

fn take_first(split: Split, n: Option<usize>, field: &'static str) -> Result<Split, DataError> {
    let Some(n) = n else {
        return Ok(split);
    };
    check_take(split.len() as u64, n, field)?;
    // A copy, not a view: a view would keep the whole original split in
    // memory (on the device, too, once moved there).
    Ok(Split {
        x: split.x.narrow(0, 0, n as i64).copy(),
        y: split.y.narrow(0, 0, n as i64).copy(),
    })
}

/// He et al.'s training augmentation for a batch `x` of `[n, c, h, w]`
/// images: zero-pad [`AUGMENT_PAD`] pixels on each side, take a random
/// `h × w` crop per image (each of the 9 × 9 offsets equally likely), and
/// flip it left–right with probability 1/2.
///
/// Offsets and flips are drawn on the host from `rng`, never from libtorch's
/// global generator; the crop itself runs on `x`'s device as two gathers
/// (rows, then columns, with the flip folded into the column index), so a
/// batch costs a fixed handful of kernels however large it is.
///
/// # Panics
/// If `x` is not 4-dimensional (a caller's bug, not a data problem).
pub fn augment(x: &Tensor, rng: &mut SplitMix64) -> Tensor {
    let size = x.size();
    assert!(
        size.len() == 4,
        "augment expects a [n, c, h, w] batch, got shape {size:?}"
    );
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    if n == 0 {
        return x.shallow_clone();
    }
    let pad = AUGMENT_PAD;
    let positions = (2 * pad + 1) as usize;
    let mut rows = Vec::with_capacity((n * h) as usize);
    let mut cols = Vec::with_capacity((n * w) as usize);
    for _ in 0..n {
        let dy = rng.below(positions) as i64;
        let dx = rng.below(positions) as i64;
        let flip = rng.next_u64() >> 63 == 1;
        rows.extend((0..h).map(|r| dy + r));
        cols.extend((0..w).map(|j| if flip { dx + w - 1 - j } else { dx + j }));
    }
    let device = x.device();
    let padded = x.constant_pad_nd([pad, pad, pad, pad]);
    let rows = Tensor::from_slice(&rows)
        .to_device(device)
        .view([n, 1, h, 1])
        .expand([n, c, h, w + 2 * pad], false);
    let cols = Tensor::from_slice(&cols)
        .to_device(device)
        .view([n, 1, 1, w])
        .expand([n, c, h, w], false);
    padded.gather(2, &rows, false).gather(3, &cols, false)
}

/// `[c, h / factor, w / factor]`, or an error naming `dataset.downsample`.
fn downsampled_shape(shape: &[i64], factor: usize) -> Result<Vec<i64>, DataError> {
    let invalid = |message: String| DataError::Invalid {
        field: "dataset.downsample",
        message,
    };
    let k = factor as i64;
    match shape {
        _ if factor == 0 => Err(invalid("0 must be at least 1".into())),
        [c, h, w] if *h >= k && *w >= k => Ok(vec![*c, h / k, w / k]),
        [_, h, w] => Err(invalid(format!(
            "{factor} is larger than the {h}×{w} images"
        ))),
        _ => Err(invalid(format!(
            "needs images ([channels, height, width]), got inputs of shape {shape:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// `n` train and `m` test examples; x[i] is filled with i, y[i] = i % 10.
    fn counting(n: i64, m: i64) -> Dataset {
        let split = |n: i64, base: i64| Split {
            x: (Tensor::arange(n, (Kind::Float, Device::Cpu)) + base as f64)
                .view([n, 1, 1, 1])
                .expand([n, 2, 3, 3], false)
                .contiguous(),
            y: Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(10),
        };
        Dataset {
            name: "counting".into(),
            train: split(n, 0),
            test: split(m, 1000),
            input_shape: vec![2, 3, 3],
            classes: 10,
        }
    }

    fn firsts(x: &Tensor) -> Vec<f64> {
        let n = x.size()[0];
        (0..n).map(|i| x.double_value(&[i, 0, 0, 0])).collect()
    }

    #[test]
    fn subset_takes_the_first_examples() {
        let ds = counting(10, 6).subset(Some(4), None).unwrap();
        assert_eq!(firsts(&ds.train.x), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(ds.train.y.size(), vec![4]);
        assert_eq!(ds.test.len(), 6);
        let ds = counting(10, 6).subset(None, Some(2)).unwrap();
        assert_eq!(ds.train.len(), 10);
        assert_eq!(firsts(&ds.test.x), vec![1000.0, 1001.0]);
        // The whole split is allowed.
        assert_eq!(
            counting(10, 6)
                .subset(Some(10), Some(6))
                .unwrap()
                .train
                .len(),
            10
        );
    }

    #[test]
    fn subset_refuses_zero_and_too_many() {
        let err = counting(10, 6)
            .subset(Some(0), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dataset.subset_train: "), "{err}");
        let err = counting(10, 6)
            .subset(None, Some(7))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dataset.subset_test: "), "{err}");
        assert!(
            err.contains("7 examples asked for but the split holds 6"),
            "{err}"
        );
    }

    /// The sizes-only twins give the same answers without tensors.
    #[test]
    fn dataset_info_subset_and_validation_match_the_dataset_ones() {
        let info = DatasetInfo {
            name: "n".into(),
            train: 10,
            test: 6,
            input_shape: vec![1, 2, 2],
            classes: 10,
        };
        for (tr, te, v) in [
            (Some(500_000), None, None),
            (Some(0), None, None),
            (None, Some(7), None),
            (Some(3), Some(2), Some(4)),
            (None, None, Some(10)),
        ] {
            let i = match v {
                Some(v) => info.clone().split_validation(v),
                None => Ok(info.clone()),
            }
            .and_then(|i| i.subset(tr, te));
            let d = match v {
                Some(v) => counting(10, 6).split_validation(v),
                None => Ok(counting(10, 6)),
            }
            .and_then(|d| d.subset(tr, te));
            match (i, d) {
                (Ok(i), Ok(d)) => {
                    assert_eq!(
                        (i.train as i64, i.test as i64),
                        (d.train.len(), d.test.len())
                    )
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (i, d) => panic!("info {i:?}, dataset {:?}", d.map(|d| d.train.len())),
            }
        }
    }

    #[test]
    fn split_validation_holds_out_the_last_examples() {
        let ds = counting(10, 6).split_validation(3).unwrap();
        assert_eq!(ds.train.len(), 7);
        assert_eq!(
            firsts(&ds.train.x),
            (0..7).map(f64::from).collect::<Vec<_>>()
        );
        assert_eq!(firsts(&ds.test.x), vec![7.0, 8.0, 9.0]);
        assert_eq!(Vec::<i64>::try_from(&ds.test.y).unwrap(), vec![7, 8, 9]);
    }

    #[test]
    fn split_validation_refuses_zero_and_everything() {
        for n in [0, 10, 11] {
            let err = counting(10, 6).split_validation(n).unwrap_err().to_string();
            assert!(err.contains("dataset.validation"), "{err}");
        }
    }

    /// `dataset.downsample`: each output pixel is the mean of its k×k block
    /// (PyTorch's avg_pool2d), both splits, and the shape follows; a factor
    /// larger than the image, 0, or flat inputs are refused by field.
    #[test]
    fn downsample_averages_blocks_and_names_its_field() {
        let x = Tensor::arange(2 * 16, (Kind::Float, Device::Cpu)).view([2, 1, 4, 4]);
        let y = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
        let ds = |x: &Tensor, shape: Vec<i64>| Dataset {
            name: "d".into(),
            train: Split {
                x: x.copy(),
                y: y.copy(),
            },
            test: Split {
                x: x.copy(),
                y: y.copy(),
            },
            input_shape: shape,
            classes: 2,
        };
        let small = ds(&x, vec![1, 4, 4]).downsample(2).unwrap();
        assert_eq!(small.input_shape, [1, 2, 2]);
        assert_eq!(small.train.x.size(), [2, 1, 2, 2]);
        assert_eq!(small.test.x.size(), [2, 1, 2, 2]);
        // Top-left block of the first image: 0, 1, 4, 5.
        let v: Vec<f32> = Vec::try_from(small.train.x.flatten(0, -1)).unwrap();
        assert_eq!(&v[..4], &[2.5, 4.5, 10.5, 12.5]);
        for (k, shape) in [(5, vec![1, 4, 4]), (0, vec![1, 4, 4]), (2, vec![16])] {
            let err = ds(&x, shape).downsample(k).err().unwrap().to_string();
            assert!(err.contains("dataset.downsample"), "{err}");
        }
    }

    #[test]
    fn normalize_uses_train_statistics_per_channel() {
        // Channel k has mean 10k and std 1 + k, and the test split is the
        // training split shifted by +1 in every channel.
        let mut rng = SplitMix64::new(5);
        let (n, c, hw) = (200i64, 3i64, 16i64);
        let noise: Vec<f32> = (0..n * c * hw).map(|_| rng.normal()).collect();
        let scale = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, c, 1, 1]);
        let shift = Tensor::from_slice(&[0.0f32, 10.0, 20.0]).view([1, c, 1, 1]);
        let x = Tensor::from_slice(&noise).view([n, c, 4, 4]) * &scale + &shift;
        let y = Tensor::zeros([n], (Kind::Int64, Device::Cpu));
        let ds = Dataset {
            name: "n".into(),
            train: Split {
                x: x.copy(),
                y: y.copy(),
            },
            test: Split { x: x + 1.0, y },
            input_shape: vec![c, 4, 4],
            classes: 2,
        }
        .normalize_per_channel();
        let (std, mean) = ds
            .train
            .x
            .std_mean_dim([0i64, 2, 3].as_slice(), false, false);
        for k in 0..c {
            let (m, s) = (mean.double_value(&[k]), std.double_value(&[k]));
            assert!(m.abs() < 1e-4, "channel {k} mean {m}");
            assert!((s - 1.0).abs() < 1e-4, "channel {k} std {s}");
        }
        // Test moved by the train statistics: +1 becomes +1/std_k.
        let diff = (&ds.test.x - &ds.train.x).mean_dim([0i64, 2, 3].as_slice(), false, None);
        let d: Vec<f64> = (0..c).map(|k| diff.double_value(&[k])).collect();
        // The raw per-channel std is about 1, 2, 3.
        assert!((d[0] - 1.0).abs() < 0.15, "{d:?}");
        assert!((d[1] - 0.5).abs() < 0.1, "{d:?}");
        assert!((d[2] - 1.0 / 3.0).abs() < 0.07, "{d:?}");
    }

    #[test]
    fn normalize_leaves_constant_features_finite_and_works_on_flat_inputs() {
        let x = Tensor::from_slice(&[1.0f32, 5.0, 3.0, 5.0, 5.0, 5.0]).view([3, 2]);
        let y = Tensor::zeros([3], (Kind::Int64, Device::Cpu));
        let ds = Dataset {
            name: "flat".into(),
            train: Split {
                x: x.copy(),
                y: y.copy(),
            },
            test: Split { x, y },
            input_shape: vec![2],
            classes: 2,
        }
        .normalize_per_channel();
        assert!(ds.train.x.isfinite().all().int64_value(&[]) == 1);
        // Feature 1 is constant 5: only centred, so all 0.
        assert_eq!(ds.train.x.select(1, 1).abs().max().double_value(&[]), 0.0);
        // Feature 0 is 1, 3, 5: mean 3, population std sqrt(8/3).
        let v = ds.train.x.double_value(&[0, 0]);
        assert!((v + 2.0 / (8.0f64 / 3.0).sqrt()).abs() < 1e-5, "{v}");
    }

    /// A batch of distinct positive values, so a copied pixel can be told
    /// from padding.
    fn batch(n: i64, c: i64, h: i64, w: i64) -> Tensor {
        Tensor::arange(n * c * h * w, (Kind::Float, Device::Cpu)).view([n, c, h, w]) + 1.0
    }

    /// The (dy, dx, flip) such that `out` is that crop of `x` padded; None
    /// when there is none.
    fn find_crop(x: &Tensor, out: &Tensor) -> Option<(i64, i64, bool)> {
        let (h, w) = (x.size()[1], x.size()[2]);
        let padded = x.constant_pad_nd([AUGMENT_PAD; 4]);
        for dy in 0..=2 * AUGMENT_PAD {
            for dx in 0..=2 * AUGMENT_PAD {
                let crop = padded.narrow(1, dy, h).narrow(2, dx, w);
                for flip in [false, true] {
                    let c = if flip {
                        crop.flip([2])
                    } else {
                        crop.shallow_clone()
                    };
                    if c.equal(out) {
                        return Some((dy, dx, flip));
                    }
                }
            }
        }
        None
    }

    #[test]
    fn augment_outputs_padded_crops_and_flips_of_each_input() {
        let x = batch(64, 2, 6, 5);
        let out = augment(&x, &mut SplitMix64::new(1));
        assert_eq!(out.size(), x.size());
        assert_eq!(out.kind(), Kind::Float);
        let mut changed = 0;
        let mut flips = 0;
        let mut offsets = std::collections::HashSet::new();
        for i in 0..64 {
            let (xi, oi) = (x.get(i), out.get(i));
            // Every pixel is padding (0) or a pixel of the same image and
            // channel.
            for ch in 0..2 {
                let vals = Vec::<f32>::try_from(oi.get(ch).flatten(0, -1)).unwrap();
                let src = Vec::<f32>::try_from(xi.get(ch).flatten(0, -1)).unwrap();
                for v in vals {
                    assert!(v == 0.0 || src.contains(&v), "image {i} channel {ch}: {v}");
                }
            }
            let (dy, dx, flip) = find_crop(&xi, &oi)
                .unwrap_or_else(|| panic!("image {i} is no padded crop of its input"));
            changed += !oi.equal(&xi) as usize;
            flips += flip as usize;
            offsets.insert((dy, dx));
        }
        assert!(changed > 50, "{changed} of 64 images changed");
        assert!((16..=48).contains(&flips), "{flips} of 64 flipped");
        assert!(offsets.len() > 20, "{} distinct offsets", offsets.len());
    }

    #[test]
    fn augment_is_fixed_by_our_seed_alone() {
        let x = batch(16, 3, 8, 8);
        let a = augment(&x, &mut SplitMix64::new(9));
        let _ = Tensor::randn([100], (Kind::Float, Device::Cpu));
        let b = augment(&x, &mut SplitMix64::new(9));
        assert!(a.equal(&b));
        let c = augment(&x, &mut SplitMix64::new(10));
        assert!(!a.equal(&c));
    }

    #[test]
    #[ignore = "needs a CUDA device: on a GPU machine, cargo nextest run --run-ignored all -E 'test(augment_on_cuda)'"]
    fn augment_on_cuda_matches_cpu() {
        assert!(tch::Cuda::is_available(), "no CUDA device");
        let x = batch(128, 3, 32, 32);
        let cpu = augment(&x, &mut SplitMix64::new(4));
        let gpu = augment(&x.to_device(Device::Cuda(0)), &mut SplitMix64::new(4));
        assert_eq!(gpu.device(), Device::Cuda(0));
        assert!(cpu.equal(&gpu.to_device(Device::Cpu)));
    }
}
