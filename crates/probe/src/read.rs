//! How a probe step's tensors become host numbers: the forward signal q
//! ([`forward_q`]), and the norms and moments of every gradient and
//! response, read once each in host memory ([`gradscope_kernels`]) or, on
//! CUDA, reduced on the device and copied to the host in one batch
//! (`grouped`), with the exactness refinements both share.

use crate::ProbeError;
use gradscope_kernels as kernels;
use gradscope_models::Activation;
use tch::{Device, Kind, Tensor};

/// The forward signal at each of `outputs` (a probe step's recorded probe
/// point outputs): q, the variance across the batch (dimension 0, the
/// population variance) of every unit (every other index: a feature, or a
/// channel and position of a feature map), averaged over units. Poole et
/// al. (2016) call the same average over an infinitely wide layer's units
/// q; taken over a batch, it falls toward 0 when the layer's outputs no
/// longer depend on the input (forward collapse: a sigmoid MLP at PyTorch's
/// default init loses about 0.85 decades of √q per layer).
///
/// In host memory, one read of each output in float64 sums around its
/// first row ([`gradscope_kernels::batch_variance_mean`]); elsewhere (CUDA)
/// libtorch's variance, which accumulates float32 in float64 (Welford's
/// update), averaged in float64 with one host copy for all points. Both
/// keep a collapsed layer's variance of 1e-11 around a mean of 0.3 (a
/// test holds it to a float64 copy's). A batch of one has no spread (NaN).
pub fn forward_q(outputs: &[Tensor]) -> Result<Vec<f64>, ProbeError> {
    if outputs.is_empty() {
        return Ok(Vec::new());
    }
    let _guard = tch::no_grad_guard();
    // In host memory, one read per output (`kernels::batch_variance_mean`);
    // elsewhere, or in another layout, libtorch's variance below.
    let host: Vec<Option<f64>> = outputs
        .iter()
        .map(|h| kernels::batch_variance_mean(&h.detach()))
        .collect();
    if host.iter().all(Option::is_some) {
        return Ok(host.into_iter().flatten().collect());
    }
    let parts = outputs
        .iter()
        .zip(&host)
        .map(|(h, read)| {
            if let Some(q) = read {
                return Tensor::f_full([1], *q, (Kind::Double, Device::Cpu))
                    .and_then(|t| t.f_to_device(h.device()));
            }
            let h = h.detach();
            if h.dim() == 0 || h.size()[0] < 2 {
                return Tensor::f_full([1], f64::NAN, (Kind::Double, h.device()));
            }
            h.f_var_correction([0i64].as_slice(), tch::Scalar::int(0), false)?
                .f_mean(Kind::Double)?
                .f_reshape([1])
        })
        .collect::<Result<Vec<Tensor>, tch::TchError>>()?;
    let all = Tensor::f_cat(&parts, 0)?.f_to_device(Device::Cpu)?;
    Ok(Vec::<f64>::try_from(&all)?)
}

/// Pairs of examples [`forward_c`] reads: (0, 1), (2, 3), … of the probed
/// batch, at most this many. A fixed sample keeps the reading's cost at a
/// few dozen dot products per layer whatever the batch, and the same
/// pairs are read at every layer and every probe step (the probed batch
/// is the same examples throughout a run where the probe fixes it).
pub const CORRELATION_PAIRS: i64 = 32;

/// The correlation between inputs at each of `outputs`: for each pair (a,
/// b) of [`CORRELATION_PAIRS`] disjoint pairs of examples, (0, 1), (2, 3),
/// …, c_ab = q_ab / √(q_aa·q_bb) with q_ab = the mean over units of
/// h_a,i·h_b,i (no centring over units or over the batch), averaged over
/// the pairs whose c_ab is defined, in float64. This is Poole et al.
/// (2016)'s correlation map's c, taken over one layer's units for a fixed
/// sample of pairs: 1 when the layer maps the two inputs to parallel
/// vectors, which is forward collapse (inputs indistinguishable) where it
/// holds for every pair.
///
/// Read for outputs of rank 2 (`[batch, features]`: an MLP's
/// pre-activations, a recurrent step's hidden state); NaN for any other
/// rank (a feature map, a block of tokens), for a batch of fewer than two,
/// and where no pair has both lengths above 0. Outputs of one shape are
/// stacked and reduced together, with one host copy per shape: a deep
/// MLP has dozens of points and their dispatch cost, not the arithmetic,
/// would dominate.
pub fn forward_c(outputs: &[Tensor]) -> Result<Vec<f64>, ProbeError> {
    let _guard = tch::no_grad_guard();
    let mut c = vec![f64::NAN; outputs.len()];
    // The points of each readable shape, in point order.
    let mut shapes: Vec<(Vec<i64>, Vec<usize>)> = Vec::new();
    for (i, h) in outputs.iter().enumerate() {
        let size = h.size();
        if size.len() != 2 || size[0] < 2 || size[1] < 1 {
            continue;
        }
        match shapes.iter_mut().find(|(s, _)| *s == size) {
            Some((_, points)) => points.push(i),
            None => shapes.push((size, vec![i])),
        }
    }
    for (size, points) in shapes {
        let pairs = (size[0] / 2).min(CORRELATION_PAIRS);
        let parts = points
            .iter()
            .map(|&i| outputs[i].detach().f_narrow(0, 0, 2 * pairs))
            .collect::<Result<Vec<Tensor>, tch::TchError>>()?;
        // [points, pairs, 2, units], in float64 before any product.
        let h = Tensor::f_stack(&parts, 0)?
            .f_to_kind(Kind::Double)?
            .f_reshape([points.len() as i64, pairs, 2, size[1]])?;
        let (a, b) = (h.f_select(2, 0)?, h.f_select(2, 1)?);
        let mean = |t: Tensor| t.f_mean_dim([-1i64].as_slice(), false, Kind::Double);
        let qab = mean(a.f_mul(&b)?)?;
        let qaa = mean(a.f_square()?)?;
        let qbb = mean(b.f_square()?)?;
        let cab = qab.f_div(&qaa.f_mul(&qbb)?.f_sqrt()?)?;
        let host = Vec::<f64>::try_from(&cab.f_to_device(Device::Cpu)?.f_reshape([-1])?)?;
        for (k, &i) in points.iter().enumerate() {
            let row = &host[k * pairs as usize..(k + 1) * pairs as usize];
            let defined: Vec<f64> = row.iter().copied().filter(|v| v.is_finite()).collect();
            if !defined.is_empty() {
                c[i] = defined.iter().sum::<f64>() / defined.len() as f64;
            }
        }
    }
    Ok(c)
}

/// The tensors of one probe step.
pub(crate) struct Probed {
    /// The weight gradients whose sums are not known, in point order.
    pub(crate) weight_grads: Vec<Tensor>,
    /// The weights whose norm is not known, in point order.
    pub(crate) weights: Vec<Tensor>,
    /// Per probe point with a weight: its weight's norm where it was given.
    pub(crate) known_norms: Vec<Option<f64>>,
    /// Per probe point with a weight: its gradient's sums where given.
    pub(crate) known_grads: Vec<Option<kernels::GradSums>>,
    /// The dL/dh kept for now ([`OutputGrad::Kept`]), in point order.
    pub(crate) outputs: Vec<Tensor>,
    pub(crate) responses: Vec<Tensor>,
    /// The nonlinearity each response is measured against.
    pub(crate) response_activations: Vec<Activation>,
}

impl Probed {
    pub(crate) fn all(&self) -> impl Iterator<Item = &Tensor> {
        self.weight_grads
            .iter()
            .chain(&self.weights)
            .chain(&self.outputs)
            .chain(&self.responses)
    }
}

/// What a probe step reads, in host numbers: `(l2, non-zero count)` of each
/// weight gradient and each dL/dh, each weight's norm, and each response's
/// `[mean, std, saturated fraction, dead fraction]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Readings {
    pub(crate) weight_grads: Vec<(f64, f64)>,
    pub(crate) weights: Vec<f64>,
    pub(crate) outputs: Vec<(f64, f64)>,
    pub(crate) responses: Vec<[f64; 4]>,
}

impl Readings {
    /// One read of each tensor in host memory ([`gradscope_kernels`]);
    /// `activation` is the network's (see [`read_on_host_each`]).
    pub(crate) fn onepass(t: &Probed, activation: Activation) -> Readings {
        let grads: Vec<Tensor> = t
            .weight_grads
            .iter()
            .chain(&t.weights)
            .chain(&t.outputs)
            .map(Tensor::shallow_clone)
            .collect();
        let (g, r) = read_on_host_each(&grads, &t.responses, &t.response_activations, activation);
        let (w, o) = (t.weight_grads.len(), t.weights.len());
        let pairs = |g: &[kernels::GradSums]| -> Vec<(f64, f64)> {
            g.iter().map(|s| (s.l2(), s.nonzero as f64)).collect()
        };
        Readings {
            weight_grads: pairs(&g[..w]),
            weights: g[w..w + o].iter().map(|s| s.l2()).collect(),
            outputs: pairs(&g[w + o..]),
            responses: r.iter().map(response_reading).collect(),
        }
    }

    /// libtorch's reductions, on whatever device the tensors are on. Small
    /// tensors of the same shape are reduced together (one stack and one
    /// reduction per distinct shape, not one per layer): a probe step is
    /// hundreds of tiny ops otherwise, and their dispatch cost, not the
    /// arithmetic, dominated the MLP's probe time in `make bench`.
    pub(crate) fn libtorch(t: &Probed, activation: Activation) -> Result<Readings, ProbeError> {
        let (wg_part, wg_order) = grouped(&t.weight_grads, grad_stats);
        let (w_part, w_order) = grouped(&t.weights, |x, dims| l2_fast(x, dims).unsqueeze(0));
        let (o_part, o_order) = grouped(&t.outputs, grad_stats);
        // Responses of one shape are stacked only with those measured
        // against the same nonlinearity.
        let (s_part, s_order) =
            grouped_tagged(&t.responses, &t.response_activations, response_stats);
        let parts: Vec<Tensor> = wg_part
            .into_iter()
            .chain(w_part)
            .chain(o_part)
            .chain(s_part)
            .collect();
        let host: Vec<f64> = if parts.is_empty() {
            Vec::new()
        } else {
            Vec::try_from(Tensor::cat(&parts, 0).to_device(Device::Cpu))?
        };
        let mut at = 0;
        let mut take = |len: usize, groups: &[Vec<usize>], k: usize| {
            let part = ungroup(&host[at..at + k * len], groups, k);
            at += k * len;
            part
        };
        let mut wg = take(t.weight_grads.len(), &wg_order, 2);
        let mut wn = take(t.weights.len(), &w_order, 1);
        let mut og = take(t.outputs.len(), &o_order, 2);
        let mut st = take(t.responses.len(), &s_order, 4);
        // Norms taken in float32 that may have lost squares out of its
        // range are taken again in float64 (see `l2_fast`): exact where
        // gradients vanish, one pass elsewhere.
        refine_norms(&mut wg[0], &t.weight_grads);
        refine_norms(&mut wn[0], &t.weights);
        refine_norms(&mut og[0], &t.outputs);
        refine_stds(&mut st[1], &t.responses, activation);
        let zip2 = |s: &[Vec<f64>]| s[0].iter().copied().zip(s[1].iter().copied()).collect();
        Ok(Readings {
            weight_grads: zip2(&wg),
            weights: wn.swap_remove(0),
            outputs: zip2(&og),
            responses: (0..t.responses.len())
                .map(|i| [st[0][i], st[1][i], st[2][i], st[3][i]])
                .collect(),
        })
    }
}

/// [`kernels::read`] with `activation`'s flat part.
pub(crate) fn read_on_host(
    grads: &[Tensor],
    responses: &[Tensor],
    activation: Activation,
) -> (Vec<kernels::GradSums>, Vec<kernels::ResponseSums>) {
    let (at_most, at_least) = activation.flat_bounds();
    kernels::read(grads, responses, kernels::Flat { at_most, at_least })
}

/// [`read_on_host`] with each response measured against its own
/// nonlinearity (`activations`, one per response): those of `main` (the
/// network's; all of them outside the recurrent family) in one read with
/// `grads`, as [`read_on_host`] alone would read them, and each other
/// nonlinearity's in one more.
pub(crate) fn read_on_host_each(
    grads: &[Tensor],
    responses: &[Tensor],
    activations: &[Activation],
    main: Activation,
) -> (Vec<kernels::GradSums>, Vec<kernels::ResponseSums>) {
    let mut kinds = vec![main];
    for a in activations {
        if !kinds.contains(a) {
            kinds.push(*a);
        }
    }
    let mut grad_sums = Vec::new();
    let mut sums: Vec<Option<kernels::ResponseSums>> = vec![None; responses.len()];
    for (k, kind) in kinds.into_iter().enumerate() {
        let members: Vec<usize> = (0..responses.len())
            .filter(|&i| activations.get(i).copied().unwrap_or(main) == kind)
            .collect();
        let picked: Vec<Tensor> = members
            .iter()
            .map(|&i| responses[i].shallow_clone())
            .collect();
        let (g, r) = read_on_host(if k == 0 { grads } else { &[] }, &picked, kind);
        if k == 0 {
            grad_sums = g;
        }
        for (i, s) in members.into_iter().zip(r) {
            sums[i] = Some(s);
        }
    }
    // Every response is in exactly one group: none is left `None`.
    (grad_sums, sums.into_iter().flatten().collect())
}

/// `[mean, std, saturated fraction, dead fraction]` of one response.
pub(crate) fn response_reading(s: &kernels::ResponseSums) -> [f64; 4] {
    [s.mean(), s.std(), s.saturated_fraction(), s.dead_fraction()]
}

/// L2 norm over `dims`, accumulated in float64 (each float32 element is
/// widened before it is squared, inside the reduction: no float64 copy).
pub(crate) fn l2(x: &Tensor, dims: &[i64]) -> Tensor {
    x.norm_scalaropt_dim_dtype(2, dims, false, Kind::Double)
}

/// L2 norm over `dims` in the tensor's own float32, as float64: one read of
/// the tensor, where the float64 norm above first casts a whole float64
/// copy of it (in `make bench`, the copies were the largest share of a CNN
/// probe step). It is exact to float32 precision unless a square left
/// float32's range: elements below about 1.1e-19 square to 0 (their share
/// of the norm is then at most √numel·1.1e-19) and above about 1.8e19
/// overflow. [`kernels::needs_exact`] tells those cases from the value, and the
/// probe takes them again with [`l2`].
pub(crate) fn l2_fast(x: &Tensor, dims: &[i64]) -> Tensor {
    x.norm_scalaropt_dim(2, dims, false).to_kind(Kind::Double)
}

/// Replaces each float32 norm of `tensors` that [`kernels::needs_exact`] by its
/// float64 norm, on the host (rare, so one sync each is fine).
pub(crate) fn refine_norms(norms: &mut [f64], tensors: &[Tensor]) {
    for (norm, t) in norms.iter_mut().zip(tensors) {
        if kernels::needs_exact(*norm, t.numel() as f64) {
            let dims: Vec<i64> = (0..t.dim() as i64).collect();
            *norm = l2(t, &dims).double_value(&[]);
        }
    }
}

/// The same for the responses' stds, whose norm is over the centred
/// values, √n·std: those that need it are taken again with [`l2`].
pub(crate) fn refine_stds(stds: &mut [f64], responses: &[Tensor], activation: Activation) {
    for (std, x) in stds.iter_mut().zip(responses) {
        let n = x.numel() as f64;
        if kernels::needs_exact(*std * n.sqrt(), n) {
            // As `grouped` gives it: a stack of one, reduced over the rest.
            let dims: Vec<i64> = (1..=x.dim() as i64).collect();
            let exact = response_stats_with(&x.unsqueeze(0), &dims, activation, l2);
            *std = exact.double_value(&[1, 0]);
        }
    }
}

/// `[2, g]`: the L2 norm and the count of non-zero elements of each tensor.
pub(crate) fn grad_stats(x: &Tensor, dims: &[i64]) -> Tensor {
    let nonzero = x.count_nonzero_dim_intlist(dims).to_kind(Kind::Double);
    Tensor::stack(&[l2_fast(x, dims), nonzero], 0)
}

/// `[4, g]`: mean, population std, saturated fraction and dead-unit
/// fraction of each response, all in float64.
///
/// The std is exact without a float64 copy: with c the mean rounded to
/// float32, Σ(x − c)² is taken in float64 from the float32 differences, and
/// Var = Σ(x − c)²/n − (mean − c)². Centring first avoids the cancellation of
/// E[x²] − mean², which loses every digit when the spread is small next to
/// the mean (a collapsed layer).
pub(crate) fn response_stats(x: &Tensor, dims: &[i64], activation: Activation) -> Tensor {
    response_stats_with(x, dims, activation, l2_fast)
}

/// [`response_stats`] with the centred norm taken by `norm` ([`l2_fast`],
/// or [`l2`] where the fast one may have lost squares).
pub(crate) fn response_stats_with(
    x: &Tensor,
    dims: &[i64],
    activation: Activation,
    norm: fn(&Tensor, &[i64]) -> Tensor,
) -> Tensor {
    let numel: i64 = dims.iter().map(|&d| x.size()[d as usize]).product();
    let count = numel as f64;
    let mean = x.sum_dim_intlist(dims, true, Kind::Double) / count;
    let c = mean.to_kind(x.kind());
    let ss = norm(&(x - &c), dims).square() / count;
    // [g, 1, 1, ...] → [g]
    let flat = |t: &Tensor| t.flatten(1, -1).squeeze_dim(1);
    let mean = flat(&mean);
    let offset = &mean - flat(&c).to_kind(Kind::Double);
    let var = (ss - offset.square()).clamp_min(0.0);
    let flat_part = activation.saturated(x);
    let saturated = flat_part.sum_dim_intlist(dims, false, Kind::Double) / count;
    // Dead units: a unit (feature, or channel of a feature map: dim 2 of
    // the stack) in the flat part for every example and position of the
    // batch. For ReLU that is a unit that passes no gradient at all; the
    // saturated fraction above is about one half by construction.
    let dead = if x.dim() >= 3 {
        let per_unit: Vec<i64> = dims.iter().copied().filter(|&d| d != 2).collect();
        let units = x.size()[2] as f64;
        let active =
            flat_part
                .logical_not()
                .sum_dim_intlist(per_unit.as_slice(), false, Kind::Int64);
        active
            .eq(0)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
            / units
    } else {
        // No batch and unit axes to tell apart.
        saturated.full_like(f64::NAN)
    };
    Tensor::stack(&[mean, var.sqrt(), saturated, dead], 0)
}

/// Tensors larger than this are reduced one by one: stacking them would copy
/// megabytes (CNN feature maps) to save one op dispatch, and measured slower.
const GROUP_MAX_NUMEL: i64 = 1 << 16;

/// Applies `reduce` once per group of same-shape small tensors (one per
/// large tensor): `reduce` gets the stack `[g, ...shape]` and the dims to
/// reduce, and returns `[k, g]` in float64. Returns each group's flattened
/// results (still on the device) and the groups' member indices in the
/// order their values appear.
pub(crate) fn grouped(
    tensors: &[Tensor],
    reduce: impl Fn(&Tensor, &[i64]) -> Tensor,
) -> (Vec<Tensor>, Vec<Vec<usize>>) {
    let tags = vec![(); tensors.len()];
    grouped_tagged(tensors, &tags, |x, dims, ()| reduce(x, dims))
}

/// [`grouped`], where only tensors of the same `tags` entry (one per
/// tensor) are stacked together, and `reduce` gets the group's tag.
pub(crate) fn grouped_tagged<T: Copy + PartialEq>(
    tensors: &[Tensor],
    tags: &[T],
    reduce: impl Fn(&Tensor, &[i64], T) -> Tensor,
) -> (Vec<Tensor>, Vec<Vec<usize>>) {
    let mut groups: Vec<(Vec<i64>, T, Vec<usize>)> = Vec::new();
    for ((i, t), &tag) in tensors.iter().enumerate().zip(tags) {
        let shape = t.size();
        let small = t.numel() as i64 <= GROUP_MAX_NUMEL;
        match groups.iter_mut().find(|(s, g, m)| {
            small && *s == shape && *g == tag && tensors[m[0]].numel() as i64 <= GROUP_MAX_NUMEL
        }) {
            Some((_, _, members)) => members.push(i),
            None => groups.push((shape, tag, vec![i])),
        }
    }
    let parts: Vec<Tensor> = groups
        .iter()
        .map(|(shape, tag, members)| {
            // A group of one is a view, not a copy.
            let stacked = match members.as_slice() {
                [only] => tensors[*only].unsqueeze(0),
                _ => Tensor::stack(&members.iter().map(|&i| &tensors[i]).collect::<Vec<_>>(), 0),
            };
            let dims: Vec<i64> = (1..=shape.len() as i64).collect();
            reduce(&stacked, &dims, *tag).flatten(0, -1)
        })
        .collect();
    (parts, groups.into_iter().map(|(_, _, m)| m).collect())
}

/// Inverse of [`grouped`] on the host: `k` statistics per tensor, back in
/// the tensors' own order.
pub(crate) fn ungroup(values: &[f64], groups: &[Vec<usize>], k: usize) -> Vec<Vec<f64>> {
    let n: usize = groups.iter().map(Vec::len).sum();
    let mut out = vec![vec![f64::NAN; n]; k];
    let mut at = 0;
    for members in groups {
        let g = members.len();
        for (s, stat) in out.iter_mut().enumerate() {
            for (j, &i) in members.iter().enumerate() {
                stat[i] = values[at + s * g + j];
            }
        }
        at += k * g;
    }
    out
}

/// Dong, Cordonnier & Loukas (2021)'s rank-collapse residual of each of
/// `outputs` (block outputs of tokens, `[batch, tokens, width]`): for each
/// example's token matrix X, ‖X − 1·x̄ᵀ‖_F / ‖X‖_F with x̄ the mean token,
/// averaged over the batch, in float64. 1·x̄ᵀ is the matrix of identical
/// rows nearest X in Frobenius norm (the mean minimizes the summed squared
/// distance to the rows), so the residual is 0 exactly when every token is
/// the same vector, and 1 when the tokens have mean 0. An example whose X
/// is 0 has no residual (0/0, NaN), and then neither has the batch's mean.
///
/// A float64 copy of each output and a handful of reductions over it on
/// its own device, with one host copy for all of them: the copy keeps a
/// residual of 1e-9 against a norm of 1 (what a collapsed stack of blocks
/// reads) from float32's rounding of the centred values.
pub fn rank_collapse(outputs: &[Tensor]) -> Result<Vec<f64>, ProbeError> {
    per_tensor_to_host(outputs, |i, h| {
        expect_dims(i, h, 3, "[batch, tokens, width]")?;
        let x = h.detach().f_to_kind(Kind::Double)?;
        let centred = x.f_sub(&x.f_mean_dim([1i64].as_slice(), true, Kind::Double)?)?;
        let per_example = |t: &Tensor| {
            t.f_square()?
                .f_sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Double)
        };
        Ok(per_example(&centred)?
            .f_div(&per_example(&x)?)?
            .f_sqrt()?
            .f_mean(Kind::Double)?
            .f_reshape([1])?)
    })
    .map(|parts| parts.into_iter().map(|mut v| v.remove(0)).collect())
}

/// The mean attention entropy of each head, for each of `probs` (attention
/// probabilities, `[batch, heads, queries, keys]`, each row over the keys
/// summing to 1): −Σ_keys p·ln p per query (libtorch's `special_entr`,
/// which takes 0·ln 0 as 0), averaged over the batch and the queries, in
/// nats and float64. Uniform attention over K keys reads ln K, attention
/// to a single key 0; a causal mask's uniform rows read the mean of
/// ln(i + 1) over queries i. One host copy for all of them.
pub fn attention_entropy(probs: &[Tensor]) -> Result<Vec<Vec<f64>>, ProbeError> {
    per_tensor_to_host(probs, |i, p| {
        expect_dims(i, p, 4, "[batch, heads, queries, keys]")?;
        Ok(p.detach()
            .f_to_kind(Kind::Double)?
            .f_special_entr()?
            .f_sum_dim_intlist([3i64].as_slice(), false, Kind::Double)?
            .f_mean_dim([0i64, 2].as_slice(), false, Kind::Double)?)
    })
}

/// `read` of each tensor (a float64 vector on the tensor's device), all
/// copied to the host at once: one device sync, not one per tensor.
fn per_tensor_to_host(
    tensors: &[Tensor],
    read: impl Fn(usize, &Tensor) -> Result<Tensor, ProbeError>,
) -> Result<Vec<Vec<f64>>, ProbeError> {
    let Some(first) = tensors.first() else {
        return Ok(Vec::new());
    };
    let _guard = tch::no_grad_guard();
    let device = first.device();
    let mut parts = Vec::with_capacity(tensors.len());
    let mut lengths = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        // A no-op unless the tensors are on several devices.
        let part = read(i, t)?.f_to_device(device)?;
        lengths.push(part.numel());
        parts.push(part);
    }
    let host = Vec::<f64>::try_from(Tensor::f_cat(&parts, 0)?.f_to_device(Device::Cpu)?)?;
    let mut at = 0;
    Ok(lengths
        .into_iter()
        .map(|n| {
            at += n;
            host[at - n..at].to_vec()
        })
        .collect())
}

/// An error unless tensor `i` has `dims` dimensions (`layout` names them).
fn expect_dims(i: usize, t: &Tensor, dims: usize, layout: &str) -> Result<(), ProbeError> {
    if t.dim() == dims {
        return Ok(());
    }
    Err(ProbeError::Shape(format!(
        "tensor {i} is {:?}, not {layout}",
        t.size()
    )))
}
