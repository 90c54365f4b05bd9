//! The lesion study and the path study of Veit, Wilber & Belongie (2016)
//! on a trained run's saved weights (see `gradscope_models::lesion` for how
//! a net runs its blocks another way).
//!
//! - [`lesion_run`]: the trained net, then every single deletable block
//!   deleted, then k blocks deleted at random and k random pairs of
//!   same-shape blocks swapped, `per_k` draws each; train and test error
//!   of the first `samples` images of each split, in eval mode.
//! - [`path_run`]: for each path length k, the gradient at the first
//!   block's input through paths of k residual branches, at the trained
//!   weights and at the run's initial weights; every path where there are
//!   at most `per_k` of that length, else `per_k` drawn at random.
//!
//! The draws come from the gradscope's own SplitMix64 seeded by `seed`, so
//! a rerun draws the same lesions.

use crate::landscape::{check_run_at, load_run_at};
use crate::record::RunRecord;
use crate::train_loop::{evaluate, objective};
use crate::TrainError;
use gradscope_data::rng::SplitMix64;
use gradscope_data::Split;
use gradscope_format::landscape::Weights;
use gradscope_format::lesion::{binomial, LesionKind, LesionRow, PathRow};
use gradscope_models::lesion::{BlockPlan, Blocks};
use gradscope_models::{Activation, Network, ProbePoint, Recording};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tch::{Device, Tensor};

/// The settings of both studies.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Images of each split the errors are measured on (the first ones).
    pub samples: usize,
    /// Draws per k (lesions), and paths per length (the path study).
    pub per_k: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Images in the path study's batch (the first training images).
    pub batch: usize,
    /// The most blocks deleted (or pairs swapped) at once; every k up to
    /// the deletable blocks when `None`.
    pub max_k: Option<usize>,
}

impl Options {
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, message: &str| {
            Err(TrainError::Invalid {
                field: field.into(),
                message: message.into(),
            })
        };
        if self.samples == 0 {
            return bad("--samples", "0 images measure nothing (give 1 or more)");
        }
        if self.per_k == 0 {
            return bad("--per-k", "0 draws per k measure nothing (give 1 or more)");
        }
        if self.max_k == Some(0) {
            return bad(
                "--max-k",
                "0 blocks deleted is the intact net, measured anyway (give 1 or more)",
            );
        }
        if self.batch == 0 {
            return bad(
                "--batch",
                "a batch of 0 images has no gradient (give 1 or more)",
            );
        }
        Ok(())
    }
}

/// A net whose forward pass runs its blocks as a [`BlockPlan`] says, so
/// that the training loop's own `evaluate` scores it.
struct Lesioned<'a> {
    net: &'a dyn Network,
    plan: BlockPlan,
}

impl Network for Lesioned<'_> {
    fn forward(&self, x: &Tensor, _train: bool, _rec: Option<&Recording>) -> Tensor {
        match self.net.forward_planned(x, &self.plan) {
            Some((logits, _)) => logits,
            None => unreachable!("a Lesioned net is built only where `blocks` is Ok"),
        }
    }

    fn probe_points(&self) -> &[ProbePoint] {
        self.net.probe_points()
    }

    fn activation(&self) -> Activation {
        self.net.activation()
    }
}

/// The run's blocks, or a refusal that names its family and the reason.
fn blocks_of(net: &dyn Network, record: &RunRecord) -> Result<Blocks, TrainError> {
    net.blocks().map_err(|why| TrainError::Invalid {
        field: "model.family".into(),
        message: format!(
            "run {}: the {} family has no lesions or paths: {why}",
            record.run,
            record.config.model.family_name()
        ),
    })
}

/// Checks a run folder for the lesion study without loading its weights:
/// a run, with saved weights, of a family whose blocks a lesion can
/// address. The last needs the net built (cheap next to the study).
pub fn check_run(run_dir: &Path) -> Result<RunRecord, TrainError> {
    let (record, _) = check_run_at(run_dir, Weights::Trained)?;
    // The families and variants that build no addressable blocks, refused
    // before anything is loaded (the same words `Network::blocks` gives).
    let why = match (record.config.model.family_name(), record.variant.as_str()) {
        ("inception", _) => Some("its modules' branches have no identity to fall back on (the mlp, cnn and bottleneck families have)"),
        (_, "highway") => Some(gradscope_models::lesion::HIGHWAY_REFUSAL),
        _ => None,
    };
    if let Some(why) = why {
        return Err(TrainError::Invalid {
            field: "model.family".into(),
            message: format!(
                "run {}: the {} family has no lesions or paths: {why}",
                record.run,
                if record.variant == "highway" {
                    format!("{} (highway)", record.config.model.family_name())
                } else {
                    record.config.model.family_name().to_owned()
                }
            ),
        });
    }
    Ok(record)
}

/// `k` distinct indices of `from`, drawn uniformly (a partial
/// Fisher–Yates shuffle), in increasing order.
fn draw(rng: &mut SplitMix64, from: &[usize], k: usize) -> Vec<usize> {
    let mut pool = from.to_vec();
    for i in 0..k.min(pool.len()) {
        let j = i + (rng.next_u64() % (pool.len() - i) as u64) as usize;
        pool.swap(i, j);
    }
    let mut out = pool[..k.min(pool.len())].to_vec();
    out.sort_unstable();
    out
}

/// Every k-subset of `0..n` in lexicographic order (for small counts).
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn rec(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            if n - i < k - cur.len() {
                break;
            }
            cur.push(i);
            rec(i + 1, n, k, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(0, n, k, &mut Vec::new(), &mut out);
    out
}

/// The pairs of blocks that can be swapped: both deletable, of one shape.
fn swappable(blocks: &Blocks, shapes: &[Vec<i64>]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for a in 0..blocks.blocks.len() {
        for b in a + 1..blocks.blocks.len() {
            if blocks.blocks[a].same_shape && blocks.blocks[b].same_shape && shapes[a] == shapes[b]
            {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// What [`lesion_run`] found.
pub struct Lesions {
    pub record: RunRecord,
    pub blocks: Blocks,
    pub rows: Vec<LesionRow>,
    /// Images each error is the mean of.
    pub samples: usize,
    /// The dataset's classes (a guess's error is 1 − 1/classes).
    pub classes: i64,
}

/// The lesion study of one run. `progress(done, total)` after each lesion;
/// `None` when `stop` was set.
pub fn lesion_run(
    run_dir: &Path,
    opts: &Options,
    device: Device,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Lesions>, TrainError> {
    opts.validate()?;
    let run = load_run_at(run_dir, device, Weights::Trained)?;
    let blocks = blocks_of(run.net.as_ref(), &run.record)?;
    let n = blocks.blocks.len();
    let shapes: Vec<Vec<i64>> = blocks
        .blocks
        .iter()
        .map(|b| {
            run.net
                .probe_points()
                .iter()
                .find(|p| p.name == b.name)
                .map(|p| p.output_shape.clone())
                .unwrap_or_default()
        })
        .collect();
    let deletable: Vec<usize> = (0..n).filter(|&i| blocks.blocks[i].same_shape).collect();
    let pairs = swappable(&blocks, &shapes);
    if let Some(k) = opts.max_k.filter(|&k| k > deletable.len()) {
        return Err(TrainError::Invalid {
            field: "--max-k".into(),
            message: format!(
                "{k} is more than the {} blocks run {} can delete (of its {n}, the others change the shape)",
                deletable.len(),
                run.record.run
            ),
        });
    }
    let max_k = opts.max_k.unwrap_or(deletable.len());
    let first = |split: &Split| {
        let m = (opts.samples as i64).min(split.len());
        Split {
            x: split.x.narrow(0, 0, m),
            y: split.y.narrow(0, 0, m),
        }
    };
    let (train, test) = (first(&run.data.train), first(&run.data.test));
    let samples = train.len().min(test.len()) as usize;
    // The plan of every lesion first, so that progress knows the total.
    let plans = lesion_plans(n, &deletable, &pairs, max_k, opts);
    let total = plans.len();
    let task = run.record.config.task;
    let mut rows = Vec::with_capacity(total);
    for Planned {
        lesion,
        which,
        k,
        sample,
        plan,
    } in plans
    {
        let net = Lesioned {
            net: run.net.as_ref(),
            plan,
        };
        let Some((train_loss, train_error)) = evaluate(&net, &train, task, stop) else {
            return Ok(None);
        };
        let Some((_, test_error)) = evaluate(&net, &test, task, stop) else {
            return Ok(None);
        };
        rows.push(LesionRow {
            lesion,
            blocks: which,
            k,
            sample,
            train_error,
            test_error,
            train_loss,
        });
        progress(rows.len(), total);
    }
    Ok(Some(Lesions {
        record: run.record,
        blocks,
        rows,
        samples,
        classes: run.data.classes,
    }))
}

/// One lesion to evaluate: its kind, the blocks it names (as written in
/// `lesions.csv`), its k and sample number, and the routing it applies.
struct Planned {
    lesion: LesionKind,
    which: String,
    k: usize,
    sample: usize,
    plan: BlockPlan,
}

/// Every lesion of a run of `n` blocks, in the order of `lesions.csv`: the
/// intact net, each deletable block alone, `opts.per_k` random sets of k
/// deletions for k up to `max_k`, and as many sets of k disjoint swaps of
/// adjacent `pairs`, all drawn from `opts.seed`.
fn lesion_plans(
    n: usize,
    deletable: &[usize],
    pairs: &[(usize, usize)],
    max_k: usize,
    opts: &Options,
) -> Vec<Planned> {
    let mut rng = SplitMix64::new(opts.seed);
    let planned = |lesion, which, k, sample, plan| Planned {
        lesion,
        which,
        k,
        sample,
        plan,
    };
    let mut plans = vec![planned(
        LesionKind::None,
        String::new(),
        0,
        0,
        BlockPlan::intact(n),
    )];
    for &i in deletable {
        plans.push(planned(
            LesionKind::Delete,
            i.to_string(),
            1,
            0,
            BlockPlan::deleting(n, &[i]),
        ));
    }
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(" ");
    for k in 1..=max_k {
        for sample in 0..opts.per_k {
            let chosen = draw(&mut rng, deletable, k);
            plans.push(planned(
                LesionKind::DeleteK,
                join(&chosen),
                k,
                sample,
                BlockPlan::deleting(n, &chosen),
            ));
        }
    }
    // k disjoint pairs: blocks drawn from the swappable pairs without
    // reuse, as many as there are.
    for k in 1..=max_k.min(deletable.len() / 2) {
        for sample in 0..opts.per_k {
            let mut used = vec![false; n];
            let mut chosen = Vec::new();
            let order = draw(&mut rng, &(0..pairs.len()).collect::<Vec<_>>(), pairs.len());
            // `draw` sorts; shuffle again by drawing positions one by one.
            let mut order = order;
            for i in (1..order.len()).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            for p in order {
                let (a, b) = pairs[p];
                if !used[a] && !used[b] {
                    used[a] = true;
                    used[b] = true;
                    chosen.push((a, b));
                    if chosen.len() == k {
                        break;
                    }
                }
            }
            if chosen.len() < k {
                break;
            }
            let text = chosen
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect::<Vec<_>>()
                .join(" ");
            plans.push(planned(
                LesionKind::Swap,
                text,
                k,
                sample,
                BlockPlan::swapping(n, &chosen),
            ));
        }
    }
    plans
}

/// ‖dL/dx‖ at the first block's input of one batch, with the backward pass
/// routed by `plan`.
fn input_gradient(
    net: &dyn Network,
    plan: &BlockPlan,
    batch: &Split,
    task: crate::spec::Task,
) -> f64 {
    let (logits, input) = net
        .forward_planned(&batch.x, plan)
        .expect("checked by blocks_of");
    let (loss, _) = objective(task, &logits, &batch.x, &batch.y);
    let g = Tensor::run_backward(&[loss], &[input], false, false);
    g[0].norm().double_value(&[])
}

/// The path study at one set of weights: a row per path length 0..=n.
pub fn paths_of(
    net: &dyn Network,
    blocks: &Blocks,
    batch: &Split,
    task: crate::spec::Task,
    weights: Weights,
    opts: &Options,
    stop: &AtomicBool,
) -> Option<Vec<PathRow>> {
    let n = blocks.blocks.len();
    let full = input_gradient(net, &BlockPlan::intact(n), batch, task);
    let mut rng = SplitMix64::new(opts.seed);
    let mut rows = Vec::with_capacity(n + 1);
    for k in 0..=n {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let count = binomial(n, k);
        let chosen: Vec<Vec<usize>> = if count <= opts.per_k as f64 {
            subsets(n, k)
        } else {
            let all: Vec<usize> = (0..n).collect();
            (0..opts.per_k).map(|_| draw(&mut rng, &all, k)).collect()
        };
        let grads: Vec<f64> = chosen
            .iter()
            .map(|branches| input_gradient(net, &BlockPlan::path(n, branches), batch, task))
            .collect();
        let mean = grads.iter().sum::<f64>() / grads.len() as f64;
        rows.push(PathRow {
            weights: weights.as_str().into(),
            k,
            paths: count,
            measured: grads.len(),
            mean_grad: mean,
            total: mean * count,
            full_grad: full,
        });
    }
    Some(rows)
}

/// The path study of one run, at its trained weights and at its initial
/// ones. `Ok(None)` when stopped; an error for a plain net (one path).
pub fn path_run(
    run_dir: &Path,
    opts: &Options,
    device: Device,
    stop: &AtomicBool,
) -> Result<Option<Vec<PathRow>>, TrainError> {
    opts.validate()?;
    let mut rows = Vec::new();
    for weights in [Weights::Trained, Weights::Init] {
        let run = load_run_at(run_dir, device, weights)?;
        let blocks = blocks_of(run.net.as_ref(), &run.record)?;
        if !blocks.residual {
            return Err(TrainError::Invalid {
                field: "variant".into(),
                message: format!(
                    "run {}: a plain net has one path through its blocks; the path study takes residual nets",
                    run.record.run
                ),
            });
        }
        let m = (opts.batch as i64).min(run.data.train.len());
        let batch = Split {
            x: run.data.train.x.narrow(0, 0, m),
            y: run.data.train.y.narrow(0, 0, m),
        };
        let Some(r) = paths_of(
            run.net.as_ref(),
            &blocks,
            &batch,
            run.record.config.task,
            weights,
            opts,
            stop,
        ) else {
            return Ok(None);
        };
        rows.extend(r);
    }
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradscope_models::mlp::{Mlp, MlpConfig};
    use gradscope_models::{Init, Norm, Variant};
    use tch::{nn, Kind};

    /// The elementary symmetric polynomial e_k of `a`: the sum over every
    /// k-subset of the product of its members.
    fn e_k(a: &[f64], k: usize) -> f64 {
        subsets(a.len(), k)
            .iter()
            .map(|s| s.iter().map(|&i| a[i]).product::<f64>())
            .sum()
    }

    /// Veit et al. §4: a residual net of n blocks unrolls into 2ⁿ paths.
    /// With linear blocks h ↦ h + aᵢ·h (identity weights scaled by aᵢ, on
    /// positive values, where ReLU is the identity), the path through the
    /// branches S carries ∏_{i∈S} aᵢ of the gradient that leaves the last
    /// block, so the paths of length k carry e_k(a) of it, and all paths
    /// together carry ∏(1 + aᵢ): the full backward pass.
    #[test]
    fn path_gradients_of_linear_blocks_are_products_of_their_scales() {
        let scales = [0.5, 2.0, 0.25, 1.5];
        let depth = scales.len() + 2;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Mlp::new(
            &vs.root(),
            MlpConfig {
                input_dim: 4,
                classes: 3,
                depth,
                width: 4,
                activation: Activation::Relu,
                init: Init::Glorot,
                norm: Norm::None,
                variant: Variant::Residual,
                branch_init: Default::default(),
                gate_bias: -1.0,
            },
        )
        .unwrap();
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                let layer: usize = name[5..7].parse().unwrap();
                if layer == depth - 1 {
                    continue; // the head keeps its random weights
                }
                if name.ends_with(".bias") {
                    let _ = var.zero_();
                } else {
                    let scale = if layer == 0 { 1.0 } else { scales[layer - 1] };
                    var.copy_(&(Tensor::eye(4, (Kind::Float, Device::Cpu)) * scale));
                }
            }
        });
        let x = Tensor::rand([8, 4], (Kind::Float, Device::Cpu)) + 0.1;
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1]);
        let blocks = net.blocks().unwrap();
        assert_eq!(blocks.blocks.len(), scales.len());
        assert!(blocks.residual);
        let opts = Options {
            samples: 1,
            per_k: 16,
            seed: 0,
            batch: 8,
            max_k: None,
        };
        let rows = paths_of(
            &net,
            &blocks,
            &Split { x, y },
            crate::spec::Task::Classify,
            Weights::Trained,
            &opts,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(rows.len(), scales.len() + 1);
        // Length 0 is the path of shortcuts only: the top gradient itself.
        let top = rows[0].mean_grad;
        assert!(top > 0.0);
        for r in &rows {
            assert_eq!(
                r.measured as f64, r.paths,
                "every path measured at k = {}",
                r.k
            );
            let want = e_k(&scales, r.k) * top;
            assert!(
                (r.total - want).abs() <= 1e-5 * want,
                "k = {}: {} against {want}",
                r.k,
                r.total
            );
        }
        let full = rows[0].full_grad;
        let product: f64 = scales.iter().map(|a| 1.0 + a).product();
        assert!(
            (full - product * top).abs() <= 1e-5 * full,
            "{full} against {}",
            product * top
        );
        let sum: f64 = rows.iter().map(|r| r.total).sum();
        assert!(
            (sum - full).abs() <= 1e-5 * full,
            "the paths sum to {sum}, the full pass is {full}"
        );
    }

    #[test]
    fn subsets_enumerate_every_choice() {
        assert_eq!(subsets(4, 2).len(), 6);
        assert_eq!(subsets(4, 0), vec![Vec::<usize>::new()]);
        assert_eq!(subsets(3, 3), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn draws_are_distinct_sorted_and_seeded() {
        let from: Vec<usize> = (0..10).collect();
        let a = draw(&mut SplitMix64::new(3), &from, 4);
        let b = draw(&mut SplitMix64::new(3), &from, 4);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(draw(&mut SplitMix64::new(1), &from, 10), from);
    }
}
