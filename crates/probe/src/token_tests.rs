//! Issue 35 §3, the probe's Transformer readings: the rank-collapse
//! residual at a block output of tokens ([`Reads::Tokens`]) and each
//! head's attention entropy ([`Reads::Attention`]), read directly and
//! through a hand-built attention block's probe step.

use crate::tests::probed_step_reading;
use crate::writers::{ActivationRow, RunWriters};
use crate::{attention_entropy, rank_collapse, Probe, ProbeError};
use gradscope_format::files::ACTIVATIONS_CSV;
use gradscope_format::num;
use gradscope_models::mlp::{Mlp, MlpConfig};
use gradscope_models::{Activation, Init, Network, Norm, ProbePoint, Reads, Recording, Variant};
use tch::{nn, Device, Kind, Tensor};

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

/// One self-attention block over tokens, built by hand: an embedding
/// (`block00`, a block of tokens without a response), the block's
/// attention probabilities (`block01.attn.probs`, two heads), and its
/// residual output (`block01`, a block of tokens whose output is also
/// recorded as its response), then a mean over tokens and a linear head.
struct AttentionNet {
    embed: Tensor,
    qkv: Tensor,
    out: Tensor,
    head: Tensor,
    heads: i64,
    points: Vec<ProbePoint>,
}

/// What one forward pass of [`AttentionNet`] records.
struct Pass {
    logits: Tensor,
    outputs: Vec<Option<Tensor>>,
    responses: Vec<(usize, Tensor)>,
}

impl AttentionNet {
    fn new(vs: &nn::VarStore, input: i64, tokens: i64, width: i64, heads: i64) -> AttentionNet {
        let p = vs.root();
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0 / (width as f64).sqrt(),
        };
        let embed = p.var("embed", &[input, width], init);
        let qkv = p.var("qkv", &[width, 3 * width], init);
        let out = p.var("out", &[width, width], init);
        let head = p.var("head", &[width, 3], init);
        let block = |name: &str| ProbePoint {
            name: name.into(),
            weight: None,
            output_shape: vec![tokens, width],
            trunk: true,
            reads: Reads::Tokens,
        };
        let points = vec![
            block("block00"),
            ProbePoint {
                name: "block01.attn.probs".into(),
                weight: None,
                output_shape: vec![heads, tokens, tokens],
                trunk: false,
                reads: Reads::Attention { heads },
            },
            block("block01"),
        ];
        AttentionNet {
            embed,
            qkv,
            out,
            head,
            heads,
            points,
        }
    }

    /// The forward pass, recording as a network's `mark` and `respond`
    /// would (those are the models crate's own).
    fn pass(&self, x: &Tensor) -> Pass {
        let [b, t, _] = [0, 1, 2].map(|k| x.size()[k]);
        let h0 = x.matmul(&self.embed);
        let width = h0.size()[2];
        let d = width / self.heads;
        // [batch, heads, tokens, d] each.
        let split = |m: Tensor| m.view([b, t, self.heads, d]).transpose(1, 2);
        let qkv = h0.matmul(&self.qkv).split(width, 2);
        let [q, k, v] = [0, 1, 2].map(|i| split(qkv[i].shallow_clone()));
        let probs = (q.matmul(&k.transpose(2, 3)) / (d as f64).sqrt()).softmax(-1, Kind::Float);
        let mixed = probs.matmul(&v).transpose(1, 2).reshape([b, t, width]);
        let h1 = &h0 + mixed.matmul(&self.out);
        let logits = h1
            .mean_dim([1i64].as_slice(), false, Kind::Float)
            .matmul(&self.head);
        Pass {
            logits,
            outputs: vec![Some(h0), None, Some(h1.shallow_clone())],
            responses: vec![(1, probs), (2, h1)],
        }
    }
}

impl Network for AttentionNet {
    fn forward(&self, x: &Tensor, _train: bool, _rec: Option<&Recording>) -> Tensor {
        self.pass(x).logits
    }
    fn probe_points(&self) -> &[ProbePoint] {
        &self.points
    }
    fn activation(&self) -> Activation {
        Activation::Tanh
    }
}

/// Issue 35 §3, end to end: the hand-built block's probe step reads the
/// residual at both blocks of tokens (from the recorded outputs, before
/// the backward pass) and each head's entropy (from its recorded
/// probabilities, not read as a response), each equal to the float64
/// references above; its activations.csv has `block00` as a row of q and
/// rank1, a row per head with its entropy alone, and `block01`'s response
/// row with its q and rank1.
#[test]
fn attention_block_probe_step_writes_rank1_and_entropy_rows() {
    tch::manual_seed(13);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = AttentionNet::new(&vs, 5, 7, 8, 2);
    let x = Tensor::randn([4, 7, 5], OPTS);
    let y = Tensor::from_slice(&[0i64, 1, 2, 0]);
    let params = vs.trainable_variables();
    let params: Vec<&Tensor> = params.iter().collect();
    let probe = Probe::new(&net, &params);
    let pass = net.pass(&x);
    let [h0, h1] = [0, 2].map(|i| pass.outputs[i].as_ref().unwrap().detach().copy());
    let probs = pass.responses[0].1.detach().copy();
    let loss = pass.logits.cross_entropy_for_logits(&y);
    let grads = probe.backward(&loss, &params, pass.outputs).unwrap();
    let rec = probe.collect(&net, &grads, &pass.responses).unwrap();

    let (want0, want1) = (reference_rank1(&h0), reference_rank1(&h1));
    let [r0, r1, r2] = [0, 1, 2].map(|i| rec.rank1[i]);
    assert!((r0.unwrap() - want0).abs() <= 1e-9, "{r0:?} vs {want0}");
    assert!((r2.unwrap() - want1).abs() <= 1e-9, "{r2:?} vs {want1}");
    assert_eq!(r1, None, "the attention point has no output");
    assert_eq!(rec.entropy.len(), 1);
    assert_eq!(rec.entropy[0].point, 1);
    let want = reference_entropy(&probs);
    assert_eq!(rec.entropy[0].heads.len(), 2);
    for (got, want) in rec.entropy[0].heads.iter().zip(&want) {
        assert!((got - want).abs() <= 1e-9, "{got} vs {want}");
        assert!(*got > 0.0 && *got < 7f64.ln() + 1e-9);
    }
    // The probabilities are no response: block01's output is the only one.
    assert_eq!(rec.responses.len(), 1);
    assert_eq!(rec.responses[0].point, 2);
    assert!(rec.output[1].is_none() && rec.output[2].is_some());

    let dir = std::env::temp_dir().join(format!("gradscope-token-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = net.points.iter().map(|p| p.name.clone()).collect();
    let mut w = RunWriters::create(&dir, names, probe.trunk().to_vec()).unwrap();
    w.probe(0, &rec).unwrap();
    w.finish().unwrap();
    let rows: Vec<ActivationRow> = csv::Reader::from_path(dir.join(ACTIVATIONS_CSV))
        .unwrap()
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let as_written = |v: f64| Some(num(v).parse::<f64>().unwrap());
    let names: Vec<(&str, usize)> = rows.iter().map(|r| (r.name.as_str(), r.layer)).collect();
    assert_eq!(
        names,
        [
            ("block00", 0),
            ("block01.attn.probs.h0", 1),
            ("block01.attn.probs.h1", 1),
            ("block01", 2),
        ]
    );
    let [b0, h0, h1, b1] = [0, 1, 2, 3].map(|i| &rows[i]);
    assert_eq!((b0.mean, b0.q), (None, as_written(rec.forward[0])));
    assert_eq!((b0.rank1, b0.entropy), (as_written(r0.unwrap()), None));
    for (k, row) in [h0, h1].into_iter().enumerate() {
        assert_eq!(row.head(), Some(("block01.attn.probs", k)));
        assert_eq!(row.entropy, as_written(rec.entropy[0].heads[k]));
        let others = [
            row.mean,
            row.std,
            row.saturation,
            row.dead,
            row.q,
            row.rank1,
        ];
        assert!(others.iter().all(Option::is_none), "{row:?}");
    }
    assert_eq!(b1.mean, as_written(rec.responses[0].mean));
    assert_eq!(b1.q, as_written(rec.forward[2]));
    assert_eq!((b1.rank1, b1.entropy), (as_written(r2.unwrap()), None));

    // A point that records the wrong layout is a typed error.
    let mut pass = net.pass(&x);
    pass.responses[0].1 = pass.responses[0].1.narrow(1, 0, 1);
    let loss = pass.logits.cross_entropy_for_logits(&y);
    let grads = probe.backward(&loss, &params, pass.outputs).unwrap();
    let err = probe.collect(&net, &grads, &pass.responses).unwrap_err();
    assert!(err.to_string().contains("block01.attn.probs"), "{err}");
}

/// An MLP has no block of tokens and no attention: its probe step reads
/// no residual and no entropy, and its activations.csv has both columns
/// empty on every row, the others as the record says.
#[test]
fn mlp_activations_leave_rank1_and_entropy_empty() {
    tch::manual_seed(14);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = MlpConfig {
        input_dim: 6,
        classes: 3,
        depth: 4,
        width: 8,
        activation: Activation::Tanh,
        init: Init::Glorot,
        norm: Norm::None,
        variant: Variant::Plain,
        branch_init: Default::default(),
        gate_bias: -1.0,
    };
    let net = Mlp::new(&vs.root(), config).unwrap();
    let x = Tensor::randn([16, 6], OPTS);
    let y = Tensor::arange(16, (Kind::Int64, Device::Cpu)).remainder(3);
    let (_, _, rec) = probed_step_reading(&vs, &net, &x, &y, Some(0), false);
    assert!(rec.rank1.iter().all(Option::is_none), "{:?}", rec.rank1);
    assert!(rec.entropy.is_empty());

    let dir = std::env::temp_dir().join(format!("gradscope-token-mlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = net.probe_points().iter().map(|p| p.name.clone()).collect();
    let trunk = net.probe_points().iter().map(|p| p.trunk).collect();
    let mut w = RunWriters::create(&dir, names, trunk).unwrap();
    w.probe(3, &rec).unwrap();
    w.finish().unwrap();
    let text = std::fs::read_to_string(dir.join(ACTIVATIONS_CSV)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(text.starts_with("step,layer,name,mean,std,saturation,dead,q,c,rank1,entropy\n"));
    let rows: Vec<ActivationRow> = csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), rec.responses.len());
    let as_written = |v: f64| Some(num(v).parse::<f64>().unwrap());
    for (row, r) in rows.iter().zip(&rec.responses) {
        // An MLP's pre-activations are [batch, features]: c is read.
        let (q, c) = (rec.forward[r.point], rec.correlation[r.point]);
        assert!(text.contains(&format!("{},{},,\n", num(q), num(c))));
        assert_eq!((row.rank1, row.entropy), (None, None), "{row:?}");
        assert_eq!(row.layer, r.point);
        assert_eq!(row.mean, as_written(r.mean));
        assert_eq!(row.std, as_written(r.std));
        assert_eq!(row.saturation, as_written(r.saturation));
        assert_eq!(row.dead, as_written(r.dead));
        assert_eq!(row.q, as_written(rec.forward[r.point]));
    }
}
