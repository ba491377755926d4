"""Writes tests/goldens/torch_ops.json: PyTorch outputs and gradients of the ops
that //tests:torch_parity_test compares Loom against.

Run from the repository root with Debian's PyTorch (CPU, 1.13):

    tools/setup.sh --test           # once, on a fresh machine: python3-torch, transformers
    /usr/bin/python3 tools/goldens/gen_torch_goldens.py

Every case stores its inputs (drawn here from a seeded torch.Generator), the
upstream gradient of its output (random, fixed), the output and the gradient
of every float input. Model ops are written the way Hugging Face's Llama
writes them (RMSNorm, rotate_half RoPE, repeat_kv attention), so parity means
parity with the reference model code, not only with torch primitives.

Floats are stored as the shortest decimal that reads back (double -> float
cast, as the C++ reader does) to the exact f32 value; f64 values use repr().
The output is deterministic: rerunning the script rewrites the same file.
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

SEED = 20240917
OUT_PATH = os.path.join("tests", "goldens", "torch_ops.json")
DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.int64: "i64", torch.int32: "i32"}


def shortest_f32(x):
    """The shortest decimal whose double rounds (as a C cast) to the f32 x."""
    if not math.isfinite(x):
        raise ValueError("non-finite value in a golden")
    for digits in range(6, 10):
        d = float("%.*g" % (digits, x))
        if struct.unpack("f", struct.pack("f", d))[0] == x:
            return d
    return x  # the exact f32 value as a double


def encode(t):
    t = t.detach()
    dtype = DTYPES[t.dtype]
    values = t.reshape(-1).tolist()
    if dtype == "f32":
        values = [shortest_f32(v) for v in values]
    return {"dtype": dtype, "shape": list(t.shape), "data": values}


class Maker:
    """Seeded random tensors."""

    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)

    def normal(self, shape, dtype, scale=1.0):
        return (torch.randn(shape, generator=self.gen, dtype=torch.float64) * scale).to(dtype)

    def ints(self, low, high, shape):
        return torch.randint(low, high, shape, generator=self.gen, dtype=torch.int64)


def differentiable_case(rng, name, op, dtype, inputs, fn, grad_inputs, attrs=None):
    """Runs fn(**inputs) and backpropagates a random upstream gradient into grad_inputs."""
    leaves = {}
    for k, v in inputs.items():
        leaves[k] = v.clone().requires_grad_(k in grad_inputs)
    out = fn(**leaves)
    upstream = rng.normal(out.shape, out.dtype)
    out.backward(upstream)
    return {
        "name": name,
        "op": op,
        "dtype": DTYPES[dtype],
        "attrs": attrs or {},
        "inputs": {k: encode(v) for k, v in inputs.items()},
        "upstream": encode(upstream),
        "outputs": {"out": encode(out)},
        "grads": {k: encode(leaves[k].grad) for k in grad_inputs},
    }


# ---- Reference formulas (Hugging Face Llama conventions where they differ).

def hf_rms_norm(x, weight, eps):
    # LlamaRMSNorm: statistics in f32 (a no-op for f32; the f64 variant keeps
    # f64 so that it checks Loom's f64 path), weight applied after the cast back.
    xf = x.to(torch.float32) if x.dtype != torch.float64 else x
    variance = xf.pow(2).mean(-1, keepdim=True)
    xf = xf * torch.rsqrt(variance + eps)
    return weight * xf.to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def hf_rope(x_bthe, positions, theta):
    """Llama RoPE on a [B, T, H, E] tensor (HF applies it on [B, H, T, E])."""
    head_dim = x_bthe.shape[-1]
    # HF builds inv_freq and the angles in f32; the f64 variant uses f64.
    angle_dtype = torch.float64 if x_bthe.dtype == torch.float64 else torch.float32
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(angle_dtype)
                                / head_dim))
    # [B, E/2, 1] @ [B, 1, T] -> [B, T, E/2], as LlamaRotaryEmbedding.forward.
    inv_freq_expanded = inv_freq[None, :, None].expand(positions.shape[0], -1, 1)
    freqs = (inv_freq_expanded @ positions[:, None, :].to(angle_dtype)).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = emb.cos().to(x_bthe.dtype).unsqueeze(1)  # [B, 1, T, E]
    sin = emb.sin().to(x_bthe.dtype).unsqueeze(1)
    x = x_bthe.transpose(1, 2)  # [B, H, T, E]
    return ((x * cos) + (rotate_half(x) * sin)).transpose(1, 2)


def explicit_attention(q, k, v, scale, seq_ids=None):
    """Causal softmax(QK^T * scale + mask) V with GQA; q [B,T,H,E], k/v [B,S,G,E].

    seq_ids [T] (packed rows): tokens attend only within their own sequence.
    """
    num_heads, num_kv_heads = q.shape[2], k.shape[2]
    qh = q.transpose(1, 2)  # [B, H, T, E]
    kh = k.transpose(1, 2).repeat_interleave(num_heads // num_kv_heads, dim=1)
    vh = v.transpose(1, 2).repeat_interleave(num_heads // num_kv_heads, dim=1)
    t, s = q.shape[1], k.shape[1]
    allowed = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
    if seq_ids is not None:
        allowed = allowed & (seq_ids[:, None] == seq_ids[None, :])
    scores = (qh @ kh.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ vh).transpose(1, 2)


# ---- Cases.

def op_cases(rng, dtype):
    suffix = "" if dtype == torch.float32 else "_f64"
    full = dtype == torch.float32  # the f64 set is a subset, to keep the file small
    cases = []

    def add(name, op, inputs, fn, grad_inputs, attrs=None):
        cases.append(differentiable_case(rng, name + suffix, op, dtype, inputs, fn, grad_inputs,
                                         attrs))

    add("matmul/2d", "matmul", {"a": rng.normal([5, 7], dtype), "b": rng.normal([7, 3], dtype)},
        lambda a, b: a @ b, ["a", "b"])
    if full:
        add("matmul/batched_broadcast", "matmul",
            {"a": rng.normal([2, 1, 4, 6], dtype), "b": rng.normal([3, 6, 5], dtype)},
            lambda a, b: a @ b, ["a", "b"])
    add("linear/bias", "linear",
        {"x": rng.normal([2, 3, 5], dtype), "weight": rng.normal([4, 5], dtype),
         "bias": rng.normal([4], dtype)},
        lambda x, weight, bias: F.linear(x, weight, bias), ["x", "weight", "bias"])
    if full:
        add("linear/no_bias", "linear",
            {"x": rng.normal([3, 5], dtype), "weight": rng.normal([4, 5], dtype)},
            lambda x, weight: F.linear(x, weight), ["x", "weight"])

    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        add(op + "/last_dim", op, {"x": rng.normal([3, 4, 7], dtype, scale=3.0)},
            lambda x, fn=fn: fn(x, -1), ["x"], {"dim": -1})
        if full:
            add(op + "/dim1", op, {"x": rng.normal([2, 5, 3], dtype, scale=3.0)},
                lambda x, fn=fn: fn(x, 1), ["x"], {"dim": 1})

    labels = torch.tensor([3, -100, 0, 10, 7, -100], dtype=torch.int64)
    for reduction in ("mean", "sum") if full else ("mean",):
        add("cross_entropy/" + reduction, "cross_entropy",
            {"logits": rng.normal([6, 11], dtype, scale=4.0), "labels": labels},
            lambda logits, labels, reduction=reduction: F.cross_entropy(
                logits, labels, ignore_index=-100, reduction=reduction),
            ["logits"], {"reduction": reduction, "ignore_index": -100})

    ids = torch.tensor([[1, 4, 1, 6, 0], [4, 4, 2, 1, 6]], dtype=torch.int64)
    add("embedding/repeated_ids", "embedding", {"ids": ids, "weight": rng.normal([7, 4], dtype)},
        lambda ids, weight: F.embedding(ids, weight), ["weight"])

    add("rms_norm/llama", "rms_norm",
        {"x": rng.normal([2, 3, 8], dtype, scale=2.0), "weight": rng.normal([8], dtype)},
        lambda x, weight: hf_rms_norm(x, weight, 1e-6), ["x", "weight"], {"eps": 1e-6})

    # Row 1 restarts positions, as packed rows do.
    positions = torch.tensor([[0, 1, 2, 3, 4], [3, 4, 0, 1, 2]], dtype=torch.int64)
    add("rope/llama", "rope", {"x": rng.normal([2, 5, 3, 8], dtype), "positions": positions},
        lambda x, positions: hf_rope(x, positions, 10000.0), ["x"], {"theta": 10000.0})
    if full:
        far = torch.tensor([[0, 17, 255, 1000]], dtype=torch.int64)
        add("rope/llama3_theta_far_positions", "rope",
            {"x": rng.normal([1, 4, 2, 16], dtype), "positions": far},
            lambda x, positions: hf_rope(x, positions, 500000.0), ["x"], {"theta": 500000.0})

    add("swiglu/3d", "swiglu",
        {"gate": rng.normal([2, 3, 8], dtype, scale=2.0), "up": rng.normal([2, 3, 8], dtype)},
        lambda gate, up: F.silu(gate) * up, ["gate", "up"])
    add("silu/2d", "silu", {"x": rng.normal([4, 9], dtype, scale=3.0)}, lambda x: F.silu(x), ["x"])

    e = 8
    add("attention/causal_gqa", "attention",
        {"q": rng.normal([2, 6, 4, e], dtype), "k": rng.normal([2, 6, 2, e], dtype),
         "v": rng.normal([2, 6, 2, e], dtype)},
        lambda q, k, v: explicit_attention(q, k, v, 1.0 / math.sqrt(e)), ["q", "k", "v"],
        {"causal": True, "scale": 0.0})
    if full:
        add("attention/causal_mha_scale", "attention",
            {"q": rng.normal([1, 5, 2, e], dtype), "k": rng.normal([1, 5, 2, e], dtype),
             "v": rng.normal([1, 5, 2, e], dtype)},
            lambda q, k, v: explicit_attention(q, k, v, 0.2), ["q", "k", "v"],
            {"causal": True, "scale": 0.2})
    cu_seqlens = torch.tensor([0, 3, 8], dtype=torch.int32)
    seq_ids = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1])
    add("attention/packed_3_5", "attention",
        {"q": rng.normal([1, 8, 4, e], dtype), "k": rng.normal([1, 8, 2, e], dtype),
         "v": rng.normal([1, 8, 2, e], dtype), "cu_seqlens": cu_seqlens},
        lambda q, k, v, cu_seqlens: explicit_attention(q, k, v, 1.0 / math.sqrt(e), seq_ids),
        ["q", "k", "v"], {"causal": True, "scale": 0.0})
    return cases


def adamw_case(rng, dtype):
    """Two torch.optim.AdamW steps; 'norm' sits in a group without weight decay."""
    lr, betas, eps = 1e-2, (0.9, 0.95), 1e-8
    shapes = {"w": [4, 3], "v": [5], "norm": [3]}
    decay = {"w": 0.1, "v": 0.1, "norm": 0.0}
    init = {k: rng.normal(s, dtype) for k, s in shapes.items()}
    grads = [{k: rng.normal(s, dtype) for k, s in shapes.items()} for _ in range(2)]
    params = {k: t.clone().requires_grad_() for k, t in init.items()}
    opt = torch.optim.AdamW(
        [{"params": [params["w"], params["v"]], "weight_decay": 0.1},
         {"params": [params["norm"]], "weight_decay": 0.0}],
        lr=lr, betas=betas, eps=eps, foreach=False)
    inputs = {k: encode(t) for k, t in init.items()}
    outputs = {}
    for step in (1, 2):
        for k, p in params.items():
            p.grad = grads[step - 1][k].clone()
            inputs["grad%d_%s" % (step, k)] = encode(grads[step - 1][k])
        opt.step()
        for k, p in params.items():
            outputs["step%d_%s" % (step, k)] = encode(p)
    for k, p in params.items():
        outputs["exp_avg_" + k] = encode(opt.state[p]["exp_avg"])
        outputs["exp_avg_sq_" + k] = encode(opt.state[p]["exp_avg_sq"])
    return {
        "name": "adamw/two_steps" + ("" if dtype == torch.float32 else "_f64"),
        "op": "adamw",
        "dtype": DTYPES[dtype],
        "attrs": {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps,
                  "weight_decay": decay, "params": list(shapes)},
        "inputs": inputs,
        "outputs": outputs,
    }


def clip_case(rng, name, max_norm, grad_scale):
    shapes = {"g0": [3, 4], "g1": [5], "g2": [2, 2, 2]}
    grads = {k: rng.normal(s, torch.float32, scale=grad_scale) for k, s in shapes.items()}
    params = []
    for k, g in grads.items():
        p = torch.zeros(shapes[k], requires_grad=True)
        p.grad = g.clone()
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    outputs = {"total_norm": encode(total)}
    for k, p in zip(grads, params):
        outputs["clipped_" + k] = encode(p.grad)
    return {
        "name": name,
        "op": "clip_grad_norm",
        "dtype": "f32",
        "attrs": {"max_norm": max_norm, "grads": list(shapes)},
        "inputs": {k: encode(g) for k, g in grads.items()},
        "outputs": outputs,
    }


def main():
    if not os.path.isdir(os.path.dirname(OUT_PATH)):
        sys.exit("run from the repository root (no %s)" % os.path.dirname(OUT_PATH))
    torch.set_num_threads(1)
    rng = Maker(SEED)
    cases = op_cases(rng, torch.float32) + op_cases(rng, torch.float64)
    cases += [adamw_case(rng, torch.float32), adamw_case(rng, torch.float64)]
    cases += [clip_case(rng, "clip_grad_norm/clipped", 1.0, 1.0),
              clip_case(rng, "clip_grad_norm/unclipped", 100.0, 1.0)]
    header = {
        "generator": "tools/goldens/gen_torch_goldens.py",
        "torch_version": torch.__version__,
        "seed": SEED,
    }
    # One case per line keeps diffs of regenerated goldens readable.
    dump = lambda obj: json.dumps(obj, separators=(",", ":"), allow_nan=False)
    text = dump(header)[:-1] + ',"cases":[\n' + ",\n".join(dump(c) for c in cases) + "]}"
    json.loads(text)  # well-formed
    with open(OUT_PATH, "w") as f:
        f.write(text + "\n")
    print("wrote %s: %d cases, %d bytes" % (OUT_PATH, len(cases), len(text) + 1))


if __name__ == "__main__":
    main()
