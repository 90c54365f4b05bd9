//! The transformer family's readings per block, from its CSV rows, for the
//! charts and the report alike (issue 35).
//!
//! A transformer's points per block are named `blockNN.attn.q` … `blockNN`
//! (gradscope-models' `transformer` module): the block output `blockNN`
//! carries the rank-collapse residual in `activations.csv`'s `rank1`, its
//! attention heads `blockNN.attn.probs.hK` their entropy, and the FFN's
//! second matrix `blockNN.mlp` the weight whose gradient Xiong et al.
//! (2020, Fig. 3) plot per layer.

use crate::rows::ActivationRow;
use crate::GradientRow;

/// The block a point name belongs to: `block07` and `block07.mlp` are 7;
/// any other name (`embed`, `head`, an MLP's `layer07.linear`) is `None`.
pub fn block_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("block")?;
    let digits = rest.split('.').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The point's name with its block number taken away: `block07.mlp` is
/// `mlp`, `block07` is the empty string.
fn within_block(name: &str) -> Option<&str> {
    block_of(name)?;
    let rest = name.strip_prefix("block")?;
    Some(rest.split_once('.').map_or("", |(_, r)| r))
}

/// ‖∇W‖ (the whole tensor's L2 norm) of each block's FFN output weight
/// (`blockNN.mlp`) at `step`, in block order: Xiong et al.'s Fig. 3
/// reading. Blocks without a finite row are left out.
pub fn ffn_gradients(rows: &[GradientRow], step: u64) -> Vec<(usize, f64)> {
    let mut out: Vec<(usize, f64)> = rows
        .iter()
        .filter(|g| g.step == step && !g.is_output() && within_block(&g.name) == Some("mlp"))
        .filter_map(|g| Some((block_of(&g.name)?, g.l2.filter(|v| v.is_finite())?)))
        .collect();
    out.sort_by_key(|p| p.0);
    out.dedup_by_key(|p| p.0);
    out
}

/// Each block output's rank-collapse residual (`rank1`) at `step`, in
/// block order.
pub fn rank1_profile(rows: &[ActivationRow], step: u64) -> Vec<(usize, f64)> {
    let mut out: Vec<(usize, f64)> = rows
        .iter()
        .filter(|r| r.step == step && within_block(&r.name) == Some(""))
        .filter_map(|r| Some((block_of(&r.name)?, r.rank1.filter(|v| v.is_finite())?)))
        .collect();
    out.sort_by_key(|p| p.0);
    out.dedup_by_key(|p| p.0);
    out
}

/// Each block's attention entropy at `step`, the mean over its heads (in
/// nats), in block order.
pub fn entropy_profile(rows: &[ActivationRow], step: u64) -> Vec<(usize, f64)> {
    let mut sums: std::collections::BTreeMap<usize, (f64, usize)> = Default::default();
    for r in rows.iter().filter(|r| r.step == step) {
        let (Some((point, _)), Some(e)) = (r.head(), r.entropy) else {
            continue;
        };
        if let (Some(b), true) = (block_of(point), e.is_finite()) {
            let s = sums.entry(b).or_default();
            s.0 += e;
            s.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(b, (sum, n))| (b, sum / n as f64))
        .collect()
}

/// The first and the last step with rows of `rank1` (the probed steps a
/// transformer's readings are taken at).
pub fn probed_steps(rows: &[ActivationRow]) -> Option<(u64, u64)> {
    let steps = rows.iter().filter(|r| r.rank1.is_some()).map(|r| r.step);
    Some((steps.clone().min()?, steps.max()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grad(step: u64, name: &str, kind: &str, l2: f64) -> GradientRow {
        GradientRow {
            step,
            layer: 0,
            name: name.into(),
            kind: kind.into(),
            trunk: false,
            l2: Some(l2),
            rms: None,
            zero_fraction: None,
            weight_norm: None,
            relative: None,
        }
    }

    fn act(step: u64, name: &str, rank1: Option<f64>, entropy: Option<f64>) -> ActivationRow {
        ActivationRow {
            step,
            layer: 0,
            name: name.into(),
            mean: None,
            std: None,
            saturation: None,
            dead: None,
            q: None,
            c: None,
            rank1,
            entropy,
        }
    }

    /// Block numbers read from the transformer's point names only.
    #[test]
    fn blocks_are_read_from_point_names() {
        assert_eq!(block_of("block07"), Some(7));
        assert_eq!(block_of("block17.mlp.fc1"), Some(17));
        for other in [
            "embed",
            "head",
            "layer07.linear",
            "block",
            "blockx.mlp",
            "t007.h",
        ] {
            assert_eq!(block_of(other), None, "{other}");
        }
    }

    /// The FFN profile takes `blockNN.mlp`'s weight rows at the step
    /// asked, in block order, and nothing else (fc1, W_o, dL/dh rows,
    /// other steps).
    #[test]
    fn the_ffn_profile_reads_each_blocks_second_ffn_weight() {
        let rows = vec![
            grad(0, "block01.mlp", "weight", 0.4),
            grad(0, "block00.mlp", "weight", 0.3),
            grad(0, "block00.mlp.fc1", "weight", 9.0),
            grad(0, "block00.attn", "weight", 9.0),
            grad(0, "block00.mlp", "output", 9.0),
            grad(5, "block00.mlp", "weight", 9.0),
            grad(0, "block02.mlp", "weight", f64::NAN),
        ];
        assert_eq!(ffn_gradients(&rows, 0), vec![(0, 0.3), (1, 0.4)]);
    }

    /// rank1 is read at block outputs, entropy averaged over each block's
    /// heads; the probed steps are those with rank1 rows.
    #[test]
    fn rank_and_entropy_profiles_per_block() {
        let rows = vec![
            act(0, "block00", Some(0.5), None),
            act(0, "block01", Some(0.25), None),
            act(0, "block01.mlp.fc1", Some(9.0), None),
            act(0, "block00.attn.probs.h0", None, Some(1.0)),
            act(0, "block00.attn.probs.h1", None, Some(2.0)),
            act(0, "block01.attn.probs.h0", None, Some(0.5)),
            act(9, "block00", Some(0.1), None),
        ];
        assert_eq!(rank1_profile(&rows, 0), vec![(0, 0.5), (1, 0.25)]);
        assert_eq!(rank1_profile(&rows, 9), vec![(0, 0.1)]);
        assert_eq!(entropy_profile(&rows, 0), vec![(0, 1.5), (1, 0.5)]);
        assert_eq!(probed_steps(&rows), Some((0, 9)));
        assert_eq!(probed_steps(&[]), None);
    }
}
