#!/usr/bin/env python3
"""PyTorch eager reference for the gradscope benchmark (a benchmark peer only).

This script is NOT part of gradscope and is not used by it. It is the PyTorch
side of a side-by-side benchmark: it trains the same models as gradscope
(crates/models/src/mlp.rs, cnn.rs, rnn.rs and transformer.rs), with the
same init scheme, batch, synthetic data and optimizer, and reads per-layer
gradient norms the way a PyTorch user would (tensor hooks,
``p.grad.norm()``), then prints one JSON line with its throughput and
memory.

Workloads (input 1x28x28, 10 classes, batch 128):
  mlp-plain, mlp-residual  depth 32, width 128, ReLU, no norm, nn.Linear init
  cnn20, cnn56             He et al. CIFAR ResNet (6n+2), option-A shortcuts,
                           BN, Kaiming-normal convs and fc, zero fc bias
and the recurrent ones (the adding problem, 100 steps of 2 features, batch 64,
a linear head on the last h, mean squared error):
  lstm                     LSTM width 128 unrolled with torch.lstm_cell, the
                           op gradscope calls, so hooks can read each h_t, c_t
  lstm-fused               the same net as one torch.nn.LSTM call (what a
                           user would otherwise train); it hides h_t and c_t,
                           so it runs with --probe off only
  Both: PyTorch's nn.LSTM init, U(+-1/sqrt(128)) for every weight and bias,
  then the forget block of b_ih set to 1 and b_hh's to 0 (gradscope's
  forget_bias 1); the head nn.Linear's own init.
and the token one (sort 32 tokens over 16 symbols, one-hot, batch 64, a
linear head on every position, cross-entropy per token):
  transformer              pre-LN, x + F(LN(x)) and a final LN, 6 blocks,
                           d 128, 4 heads, ReLU MLP of 4d; attention
                           written out (q, k, v from one Linear(d, 3d),
                           softmax(q k^T / sqrt(d/h)), times v, W_o), the
                           op sequence gradscope runs, so the probabilities
                           can be read
  transformer-fused        the same net with F.scaled_dot_product_attention
                           for scores, softmax and the product (what
                           nn.TransformerEncoderLayer calls): it never makes
                           the probabilities, so it runs with --probe off only
  Both: a bias-free Linear(16, d) embedding and learned positions, both
  N(0, 0.02^2); nn.Linear's own init elsewhere; nn.LayerNorm (eps 1e-5).
Optimizer: SGD(lr=0.01, momentum=0.9, weight_decay=1e-4); F.cross_entropy,
or for the LSTM the mean of the squared error written out as gradscope does.
Data: one random batch made once on the device and reused every step.

Probing (--probe every | every10) records on a probe step, all as device
tensors stacked and copied to the host with a single .tolist():
  * dL/dh at each probe point (tensor hooks registered in forward);
  * the L2 norm of each conv/linear weight gradient after backward;
  * mean, std (biased, as gradscope) and saturation of each response,
    computed in forward on detached tensors: ReLU's (fraction <= 0), or for
    the LSTM's h_t tanh's (fraction with |h| > 0.99), as gradscope reads them;
  * for the transformer, as gradscope's probe: each head's mean attention
    entropy (float64) and each block output's rank-collapse residual
    ||X - 1 mean(X)||_F / ||X||_F per example, batch mean (float64).
  (gradscope also reads each output's variance over the batch, q, which
  this script does not mirror for any workload.)
On every10, timed step i probes when i % 10 == 0 (warm-up steps likewise on
their own index); other steps only check a flag.

Example:
  python bench/pytorch_reference.py --workload cnn20 --probe every10 \\
      --threads 8 --warmup 3 --steps 100
  python bench/pytorch_reference.py --workload cnn20 --check

stdout carries exactly one JSON line; warnings go to stderr.

Timings only mean something on an otherwise idle machine: when other
processes hold the cores, OpenMP's spinning workers can make --threads > 1
dozens of times slower (OMP_WAIT_POLICY=PASSIVE avoids that pathology).
Peak RSS includes importing torch itself (about 470 MB for a CUDA build).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WORKLOADS = ("mlp-plain", "mlp-residual", "cnn20", "cnn56", "lstm", "lstm-fused",
             "transformer", "transformer-fused")
PROBES = {"off": None, "every": 1, "every10": 10}
BATCH = 128
INPUT_SHAPE = (1, 28, 28)
CLASSES = 10
MLP_DEPTH = 32
MLP_WIDTH = 128
# The recurrent workloads (gradscope's bench: rnn family, adding problem).
LSTM_BATCH = 64
LSTM_WIDTH = 128
LSTM_LENGTH = 100
ADDING_FEATURES = 2  # a value and a marker per step
FORGET_BIAS = 1.0
# The token workload (gradscope's bench: transformer family, sort task).
TF_BATCH = 64
TF_LENGTH = 32
TF_VOCAB = 16
TF_WIDTH = 128
TF_HEADS = 4
TF_MLP_RATIO = 4
TF_BLOCKS = 6
EMBED_STD = 0.02  # GPT-2's and ViT's, gradscope's for embeddings and positions


def is_lstm(workload):
    return workload.startswith("lstm")


def is_transformer(workload):
    return workload.startswith("transformer")


def batch_of(workload):
    if is_lstm(workload):
        return LSTM_BATCH
    return TF_BATCH if is_transformer(workload) else BATCH


# --------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------


class Recorder:
    """Collects one probe step's statistics as device tensors.

    Models call ``tap`` on each probe-point output and ``response`` on each
    response. Both return at once unless ``active`` is set, so non-probe steps
    pay only the flag check.
    """

    def __init__(self):
        self.active = False
        self.kinds = []  # kind of each probe point, in forward order
        self.out_norms = {}  # forward index -> ||dL/dh||, filled by hooks
        self.responses = []  # flat [mean, std, sat, mean, std, sat, ...]
        self.n_responses = 0
        self.extras = []  # the transformer's entropies and residuals

    def start(self):
        self.active = True
        self.kinds = []
        self.out_norms = {}
        self.responses = []
        self.n_responses = 0
        self.extras = []

    def stop(self):
        self.active = False

    def tap(self, h, kind):
        """Registers a hook that stores the norm of dL/dh for output ``h``."""
        if not self.active:
            return h
        i = len(self.kinds)
        self.kinds.append(kind)
        norms = self.out_norms
        h.register_hook(lambda g: norms.__setitem__(i, g.norm()))
        return h

    def response(self, a, tanh=False, sigmoid=False):
        """Mean, std and saturation of a response, left on the device:
        ReLU's flat part (a <= 0), with ``tanh`` tanh's (|a| > 0.99), with
        ``sigmoid`` a gate's (a < 0.01 or a > 0.99)."""
        if not self.active:
            return
        a = a.detach()
        std, mean = torch.std_mean(a, correction=0)
        if sigmoid:
            flat = (a < 0.01) | (a > 0.99)
        else:
            flat = a.abs() > 0.99 if tanh else a <= 0
        self.responses += (mean, std, flat.float().mean())
        self.n_responses += 1

    def entropy(self, probs):
        """Each head's mean attention entropy of ``probs`` [B, h, T, T],
        -sum p ln p over keys averaged over batch and queries, in float64
        as gradscope's probe reads it."""
        if not self.active:
            return
        p = probs.detach().double()
        per_head = torch.special.entr(p).sum(3).mean((0, 2))
        # float32 for the step's one stack and host copy, as everything else.
        self.extras += per_head.float().unbind()

    def rank_collapse(self, x):
        """How far each example's token matrix x [B, T, d] is from rank 1,
        ||X - 1 mean(X)^T||_F / ||X||_F, batch mean, in float64."""
        if not self.active:
            return
        x = x.detach().double()
        centred = x - x.mean(1, keepdim=True)
        ratio = (centred.square().sum((1, 2)) / x.square().sum((1, 2))).sqrt()
        self.extras.append(ratio.mean().float())

    def missing(self):
        """Probe points whose hook did not fire, by kind. Only an LSTM's
        last c_T may go without: nothing after the last step reads it, and
        where the cell is one fused kernel (CUDA) h_T is made inside that
        kernel, so autograd has no gradient at c_T to hand a hook."""
        gone = [self.kinds[i] for i in range(len(self.kinds)) if i not in self.out_norms]
        return {k: gone.count(k) for k in set(gone)}

    def gather(self, weights):
        """After backward: one flat list of device scalars, in the order
        weight grad norms, output grad norms (forward order), response stats.
        """
        # A weight is a parameter, or (parameter, first row, rows): a gate
        # block, whose gradient is those rows of the parameter's.
        parts = [
            w[0].grad.narrow(0, w[1], w[2]).norm() if isinstance(w, tuple) else w.grad.norm()
            for w in weights
        ]
        norms = self.out_norms
        if len(norms) < len(self.kinds):
            missing = self.missing()
            if set(missing) != {"c"} or missing["c"] > 1:
                raise RuntimeError(f"probe hooks did not fire: {missing}")
            nan = torch.full((), float("nan"), device=parts[0].device)
            norms = {i: norms.get(i, nan) for i in range(len(self.kinds))}
        parts += [norms[i] for i in range(len(self.kinds))]
        parts += self.responses
        parts += self.extras
        return parts


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


class Mlp(nn.Module):
    """gradscope's MLP with norm "none": depth weight layers, ReLU between.

    h0 = W0 x; h(l) = W(l) a or h(l-1) + W(l) a with a = relu(h(l-1));
    logits = W(d-1) relu(h(d-2)). Probe points: every Linear output
    (after the residual add); responses: each a a Linear reads.
    """

    def __init__(self, rec, input_dim, width, depth, classes, residual):
        super().__init__()
        self.rec = rec
        self.residual = residual
        dims = [input_dim] + [width] * (depth - 1) + [classes]
        # nn.Linear's own init: U(+-1/sqrt(fan_in)) for weight and bias,
        # gradscope's Init::PytorchDefault.
        self.layers = nn.ModuleList(
            nn.Linear(dims[l], dims[l + 1]) for l in range(depth)
        )

    def forward(self, x):
        rec = self.rec
        x = x.flatten(1)
        h = rec.tap(self.layers[0](x), "linear")
        for lin in self.layers[1:-1]:
            a = F.relu(h)
            rec.response(a)
            u = lin(a)
            h = rec.tap(h + u if self.residual else u, "linear")
        a = F.relu(h)
        rec.response(a)
        return rec.tap(self.layers[-1](a), "linear")


class ConvBn(nn.Module):
    """3x3 (padding 1, no bias) convolution followed by BatchNorm."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="relu")
        self.bn = nn.BatchNorm2d(c_out)  # gamma = 1, beta = 0

    def forward(self, x, rec):
        h = self.bn(rec.tap(self.conv(x), "conv"))
        rec.response(h)  # the BN output, before the add and the ReLU
        return h


class Block(nn.Module):
    """Two ConvBn; option-A shortcut (subsample, zero-pad channels)."""

    def __init__(self, c_in, c_out, stride, residual):
        super().__init__()
        self.c1 = ConvBn(c_in, c_out, stride)
        self.c2 = ConvBn(c_out, c_out, 1)
        self.stride = stride
        self.pad = c_out - c_in
        self.residual = residual

    def shortcut(self, x):
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            lo = self.pad // 2
            x = F.pad(x, (0, 0, 0, 0, lo, self.pad - lo))
        return x

    def forward(self, x, rec):
        u = F.relu(self.c1(x, rec))
        u = self.c2(u, rec)
        if self.residual:
            u = u + self.shortcut(x)
        return rec.tap(F.relu(u), "block")


class Cnn(nn.Module):
    """He et al. (2016) CIFAR net, depth 6n+2, stages of 16/32/64 filters."""

    def __init__(self, rec, depth, c_in, classes, residual, base=16):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth {depth} is not 6n+2")
        n = (depth - 2) // 6
        self.rec = rec
        self.stem = ConvBn(c_in, base, 1)
        blocks, c = [], base
        for stage in range(3):
            c_out = base << stage
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(Block(c, c_out, stride, residual))
                c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(c, classes)
        # gradscope Init::Kaiming for the fc: N(0, 2/fan_in), zero bias.
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        rec = self.rec
        h = F.relu(self.stem(x, rec))
        for b in self.blocks:
            h = b(h, rec)
        pooled = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return rec.tap(self.fc(pooled), "fc")


def lstm_init_(w_ih, w_hh, b_ih, b_hh):
    """gradscope's rnn init (crates/models/src/rnn.rs), which is nn.LSTM's
    U(+-1/sqrt(width)) for every weight and bias, with the forget gate's
    block (gates i, f, g, o) of b_ih at FORGET_BIAS and of b_hh at 0."""
    bound = 1.0 / LSTM_WIDTH ** 0.5
    with torch.no_grad():
        for t in (w_ih, w_hh, b_ih, b_hh):
            t.uniform_(-bound, bound)
        b_ih[LSTM_WIDTH:2 * LSTM_WIDTH].fill_(FORGET_BIAS)
        b_hh[LSTM_WIDTH:2 * LSTM_WIDTH].zero_()


class UnrolledLstm(nn.Module):
    """gradscope's rnn family with cell "lstm", one layer: T calls of
    torch.lstm_cell (the aten op tch's Tensor::lstm_cell calls) from
    h_0 = c_0 = 0, and a linear head on h_T. Probe points, as gradscope's:
    each h_t (response: h_t, tanh saturation), each c_t, the head output.
    Weights read, as gradscope's: W_hh whole (shared by every step), the
    head's, then each gate block of W_ih and of W_hh. On a probed step the
    forget, input and output gates are computed again from x_t and h_(t-1)
    without autograd and read as responses, as gradscope's probe does
    (the cell op keeps them inside)."""

    def __init__(self, rec):
        super().__init__()
        self.rec = rec
        rows = 4 * LSTM_WIDTH
        self.w_ih = nn.Parameter(torch.empty(rows, ADDING_FEATURES))
        self.w_hh = nn.Parameter(torch.empty(rows, LSTM_WIDTH))
        self.b_ih = nn.Parameter(torch.empty(rows))
        self.b_hh = nn.Parameter(torch.empty(rows))
        lstm_init_(self.w_ih, self.w_hh, self.b_ih, self.b_hh)
        self.head = nn.Linear(LSTM_WIDTH, 1)

    def forward(self, x):
        rec = self.rec
        h = c = x.new_zeros(x.shape[0], LSTM_WIDTH)
        gates = []
        for t in range(x.shape[1]):
            if rec.active:
                with torch.no_grad():
                    pre = x[:, t] @ self.w_ih.t() + self.b_ih + h @ self.w_hh.t() + self.b_hh
                    i, f, _, o = pre.chunk(4, 1)
                    gates.append((i.sigmoid(), f.sigmoid(), None, o.sigmoid()))
            h, c = torch.lstm_cell(x[:, t], (h, c), self.w_ih, self.w_hh, self.b_ih, self.b_hh)
            h = rec.tap(h, "h")
            rec.response(h, tanh=True)
            c = rec.tap(c, "c")
        out = rec.tap(self.head(h), "linear")
        # Gates i, f, g, o: the forget, input and output ones are read.
        for block in (1, 0, 3):
            for g in gates:
                rec.response(g[block], sigmoid=True)
        return out

    def probed_weights(self):
        blocks = [(w, g * LSTM_WIDTH, LSTM_WIDTH) for w in (self.w_ih, self.w_hh) for g in range(4)]
        return [self.w_hh, self.head.weight] + blocks


class FusedLstm(nn.Module):
    """The same net as one torch.nn.LSTM call: the sequence runs inside
    the op, so no hook sees h_t or c_t (never probed)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(ADDING_FEATURES, LSTM_WIDTH, batch_first=True)
        m = self.lstm
        lstm_init_(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
        self.head = nn.Linear(LSTM_WIDTH, 1)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])


class TransformerBlock(nn.Module):
    """One pre-LN block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, d, heads, ratio):
        super().__init__()
        self.heads = heads
        # q's rows, then k's, then v's (in_proj_weight's layout, gradscope's).
        self.qkv = nn.Linear(d, 3 * d)
        self.wo = nn.Linear(d, d)
        self.fc1 = nn.Linear(d, ratio * d)
        self.fc2 = nn.Linear(ratio * d, d)
        self.ln_attn = nn.LayerNorm(d)
        self.ln_mlp = nn.LayerNorm(d)

    def attention(self, x, rec, fused):
        b, t, d = x.shape
        h = self.heads
        # [B, T, 3d] -> [3, B, h, T, d/h]: q, k, v split into heads.
        q, k, v = self.qkv(x).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        if fused:
            ctx = F.scaled_dot_product_attention(q, k, v)
        else:
            probs = torch.softmax(q @ k.transpose(-2, -1) / (d // h) ** 0.5, -1)
            rec.entropy(probs)
            ctx = probs @ v
        # Heads concatenated: [B, h, T, d/h] -> [B, T, d].
        return rec.tap(self.wo(ctx.transpose(1, 2).reshape(b, t, d)), "attn")

    def forward(self, x, rec, fused):
        x = x + self.attention(self.ln_attn(x), rec, fused)
        a = F.relu(rec.tap(self.fc1(self.ln_mlp(x)), "fc1"))
        rec.response(a)
        x = rec.tap(x + rec.tap(self.fc2(a), "mlp"), "block")
        # The block output, read against ReLU as gradscope's probe reads
        # every response of this net.
        rec.response(x)
        rec.rank_collapse(x)
        return x


class Transformer(nn.Module):
    """gradscope's transformer family, variant pre-ln, on token data:
    one-hot [T, V] through a bias-free Linear(V, d), plus learned
    positions; blocks; a final LN; a Linear(d, V) on each of the last
    T positions (all of them). Probe points, as gradscope's: the embedded
    tokens, per block W_o's, fc1's and fc2's outputs and the block output,
    the head; responses fc1's ReLU and the block output; weights read the
    embedding, q, k and v (row blocks of qkv), W_o, fc1, fc2, the head."""

    def __init__(self, rec, fused):
        super().__init__()
        self.rec = rec
        self.fused = fused
        d = TF_WIDTH
        self.embed = nn.Linear(TF_VOCAB, d, bias=False)
        self.pos = nn.Parameter(torch.empty(TF_LENGTH, d))
        with torch.no_grad():
            self.embed.weight.normal_(0.0, EMBED_STD)
            self.pos.normal_(0.0, EMBED_STD)
        self.blocks = nn.ModuleList(
            TransformerBlock(d, TF_HEADS, TF_MLP_RATIO) for _ in range(TF_BLOCKS)
        )
        self.ln_final = nn.LayerNorm(d)
        self.head = nn.Linear(d, TF_VOCAB)

    def forward(self, x):
        rec = self.rec
        h = rec.tap(self.embed(x) + self.pos, "embed")
        for block in self.blocks:
            h = block(h, rec, self.fused)
        h = self.ln_final(h)
        return rec.tap(self.head(h[:, h.shape[1] - TF_LENGTH:]), "head")

    def probed_weights(self):
        d = TF_WIDTH
        weights = [self.embed.weight]
        for b in self.blocks:
            weights += [(b.qkv.weight, j * d, d) for j in range(3)]
            weights += [b.wo.weight, b.fc1.weight, b.fc2.weight]
        return weights + [self.head.weight]


def build_model(workload, rec):
    if workload == "lstm":
        return UnrolledLstm(rec)
    if workload == "lstm-fused":
        return FusedLstm()
    if is_transformer(workload):
        return Transformer(rec, fused=workload == "transformer-fused")
    if workload.startswith("mlp"):
        features = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]
        return Mlp(rec, features, MLP_WIDTH, MLP_DEPTH, CLASSES,
                   residual=workload == "mlp-residual")
    depth = int(workload[len("cnn"):])
    return Cnn(rec, depth, INPUT_SHAPE[0], CLASSES, residual=True)


def probed_weights(model):
    """The weights whose gradient norm a probe step reads: the recurrent
    nets name theirs; else the conv and linear weights, in forward
    (registration) order."""
    if hasattr(model, "probed_weights"):
        return model.probed_weights()
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def adding_batch(batch, device):
    """One batch of the adding problem as gradscope's data make it
    (crates/data/src/sequences.rs): values U[0, 1) and a marker with one 1
    in each half of the sequence; the target is the two marked values' sum."""
    t, half = LSTM_LENGTH, LSTM_LENGTH // 2
    values = torch.rand(batch, t, device=device)
    first = torch.randint(0, half, (batch,), device=device)
    second = torch.randint(half, t, (batch,), device=device)
    rows = torch.arange(batch, device=device)
    marker = torch.zeros(batch, t, device=device)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return torch.stack((values, marker), dim=2), y


def sort_batch(batch, device):
    """One batch of the sort task as gradscope's data make it
    (crates/data/src/tokens.rs): uniform tokens one-hot [B, T, V], the
    target each position's token of the sorted sequence."""
    tokens = torch.randint(0, TF_VOCAB, (batch, TF_LENGTH), device=device)
    x = F.one_hot(tokens, TF_VOCAB).float()
    return x, tokens.sort(dim=1).values


def objective(workload, out, y):
    """F.cross_entropy (per token for a sequence head, as gradscope's
    positions-as-examples), or for the LSTM the mean squared error as
    gradscope writes it (Task::Regression: flatten, subtract, square,
    mean)."""
    if is_lstm(workload):
        return (out.flatten() - y).square().mean()
    if out.dim() == 3:
        return F.cross_entropy(out.flatten(0, 1), y.flatten())
    return F.cross_entropy(out, y)


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def current_rss_mb():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


class Trainer:
    def __init__(self, workload, device, channels_last, every):
        self.device = device
        self.every = every
        self.workload = workload
        self.rec = Recorder()
        self.model = build_model(workload, self.rec).to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.weights = probed_weights(self.model)
        # foreach left at PyTorch's default (None: foreach on CUDA).
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4
        )
        if is_lstm(workload):
            self.x, self.y = adding_batch(LSTM_BATCH, device)
        elif is_transformer(workload):
            self.x, self.y = sort_batch(TF_BATCH, device)
        else:
            self.x = torch.randn(BATCH, *INPUT_SHAPE, device=device)
            if channels_last:
                self.x = self.x.to(memory_format=torch.channels_last)
            self.y = torch.randint(0, CLASSES, (BATCH,), device=device)
        self.last_record = None

    def step(self, index):
        """One training step; probes when ``index`` is a probe step.
        Returns the probe step's host values, or None."""
        probing = self.every is not None and index % self.every == 0
        if probing:
            self.rec.start()
        self.opt.zero_grad()
        logits = self.model(self.x)
        self.rec.stop()
        loss = objective(self.workload, logits, self.y)
        loss.backward()
        parts = self.rec.gather(self.weights) if probing else None
        self.opt.step()
        if parts is None:
            return None
        # One device -> host copy for the whole step.
        self.last_record = torch.stack(parts).tolist()
        return self.last_record


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_bench(args, device, channels_last):
    trainer = Trainer(args.workload, device, channels_last, PROBES[args.probe])
    for i in range(args.warmup):
        trainer.step(i)
    rss_at = {}
    marks = set(args.rss_at)
    sync(device)
    start = time.perf_counter()
    # Each step's own time, probed steps apart from the others (as
    # gradscope's bench-one reports them); on CUDA a step is only queued
    # when the loop moves on, so there are none.
    probed, unprobed = [], []
    for i in range(args.steps):
        t0 = time.perf_counter()
        trainer.step(i)
        ms = (time.perf_counter() - t0) * 1000.0
        if device.type == "cpu":
            every = trainer.every
            (probed if every is not None and i % every == 0 else unprobed).append(ms)
        if i + 1 in marks:
            rss_at[str(i + 1)] = round(current_rss_mb(), 1)
    sync(device)
    seconds = time.perf_counter() - start
    return {
        "side": "pytorch",
        "workload": args.workload,
        "probe": args.probe,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "channels_last": channels_last,
        "batch": batch_of(args.workload),
        "steps": args.steps,
        "seconds": round(seconds, 6),
        "steps_per_s": round(args.steps / seconds, 3),
        "images_per_s": round(args.steps * batch_of(args.workload) / seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_mb_at": {k: rss_at[k] for k in sorted(rss_at, key=int)},
        "probed_step_ms": statistics.median(probed) if probed else None,
        "unprobed_step_ms": statistics.median(unprobed) if unprobed else None,
        "torch": torch.__version__,
    }


def run_check(args, device, channels_last):
    """Two probed steps; counts the probe points the hooks actually found."""
    trainer = Trainer(args.workload, device, channels_last, every=1)
    counts = None
    values = []
    for i in range(2):
        values = trainer.step(i)
        kinds = trainer.rec.kinds
        step_counts = {k: kinds.count(k) for k in
                       ("linear", "conv", "block", "fc", "h", "c", "embed", "attn", "fc1", "mlp", "head")}
        if counts is not None and step_counts != counts:
            raise RuntimeError(f"probe points changed between steps: {counts} vs {step_counts}")
        counts = step_counts
    n_weights = len(trainer.weights)
    n_points = len(trainer.rec.kinds)
    n_resp = trainer.rec.n_responses
    n_extra = len(trainer.rec.extras)
    expected_len = n_weights + n_points + 3 * n_resp + n_extra
    # A point whose hook could not fire (an LSTM's c_T on CUDA) reads NaN.
    missing = trainer.rec.missing()
    n_missing = sum(missing.values())
    finite = sum(not (v == v and abs(v) != float("inf")) for v in values) == n_missing
    ok = len(values) == expected_len and finite
    out = {
        "side": "pytorch",
        "check": True,
        "ok": ok,
        "workload": args.workload,
        "device": str(device),
        "channels_last": channels_last,
        "output_points": n_points,
        "points_by_kind": {k: v for k, v in counts.items() if v},
        "weights": n_weights,
        "responses": n_resp,
        "entropies_and_residuals": n_extra,
        "values_per_probe_step": len(values),
        "finite": finite,
        "points_without_gradient": missing,
        "first_weight_grad_norm": values[0],
        "logits_grad_norm": values[n_weights + n_points - 1],
        "torch": torch.__version__,
    }
    return out, ok


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="PyTorch eager peer of the gradscope benchmark "
        "(prints one JSON line on stdout).",
    )
    p.add_argument("--workload", required=True, choices=WORKLOADS)
    p.add_argument("--probe", default="off", choices=tuple(PROBES),
                   help="gradient probing: off, every step, or every 10th step (default off)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: PyTorch's own)")
    p.add_argument("--channels-last", default="auto", choices=("on", "off", "auto"),
                   help="auto: on for CNN workloads on CPU, off otherwise")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (default 3)")
    p.add_argument("--steps", type=int, default=100, help="timed steps (default 100)")
    p.add_argument("--rss-at", default="",
                   help="comma-separated timed step counts after which to record "
                   "current RSS in MB, e.g. 1000,10000 (each must be <= --steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true",
                   help="run 2 probed steps and print the probe points found per kind")
    args = p.parse_args(argv)

    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.steps < 1:
        p.error("--steps must be at least 1")
    try:
        args.rss_at = sorted({int(s) for s in args.rss_at.split(",") if s.strip()})
    except ValueError:
        p.error(f"--rss-at: expected comma-separated integers, got {args.rss_at!r}")
    if any(n < 1 for n in args.rss_at):
        p.error("--rss-at: step counts must be at least 1")
    if args.rss_at and not args.check and args.rss_at[-1] > args.steps:
        p.error(f"--rss-at {args.rss_at[-1]} is beyond --steps {args.steps}")
    is_cnn = args.workload.startswith("cnn")
    if args.channels_last == "on" and not is_cnn:
        p.error("--channels-last on applies only to the CNN workloads")
    # nn.LSTM runs the whole sequence in one op: no h_t for a hook to read;
    # scaled_dot_product_attention never makes the probabilities.
    if args.workload == "lstm-fused" and (args.probe != "off" or args.check):
        p.error("lstm-fused hides h_t and c_t from hooks: it takes --probe off and no --check")
    if args.workload == "transformer-fused" and (args.probe != "off" or args.check):
        p.error("transformer-fused never makes the attention probabilities: it takes --probe off and no --check")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available to this torch build")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    is_cnn = args.workload.startswith("cnn")
    if args.channels_last == "auto":
        channels_last = is_cnn and device.type == "cpu"
    else:
        channels_last = args.channels_last == "on"
    print(f"pytorch_reference: {args.workload}, channels_last={channels_last}, "
          f"threads={torch.get_num_threads()}, device={device}", file=sys.stderr)

    if args.check:
        out, ok = run_check(args, device, channels_last)
        print(json.dumps(out), flush=True)
        return 0 if ok else 1
    print(json.dumps(run_bench(args, device, channels_last)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
