#!/usr/bin/env python3
"""One training step of Loom vs PyTorch eager, same model, batch, dtype, threads.

For each preset (tiny = examples/tiny, 100m = a 124M-parameter Llama) it times
forward + backward + grad clipping + AdamW in transformers' LlamaForCausalLM
(f32, eager) and runs //tools:train_step_benchmark for the same step, then
prints a table with the ratio (PyTorch ms / Loom ms: > 1 means Loom is faster).
Loom's GFLOP/s counts model FLOPs: 6 per matmul weight per token plus causal
attention (6 * layers * heads * head_dim * (seq + 1) per token).

  bazel build //tools:train_step_benchmark
  /usr/bin/python3 tools/bench/train_step_vs_torch.py [--presets tiny,100m] [--threads N]
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "tiny": dict(config=dict(vocab_size=264, hidden_size=128, intermediate_size=352,
                             num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=128, rms_norm_eps=1e-5),
                 batch=32, seq=64, steps=20),
    "100m": dict(config=dict(vocab_size=32000, hidden_size=768, intermediate_size=2048,
                             num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                             max_position_embeddings=2048),
                 batch=4, seq=256, steps=3),
}


def torch_step_ms(preset, threads, warmup=2):
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = LlamaForCausalLM(LlamaConfig(**preset["config"])).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, preset["config"]["vocab_size"], (preset["batch"], preset["seq"]))
    times = []
    for i in range(warmup + preset["steps"]):
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), sum(p.numel() for p in model.parameters())


def loom_step(binary, name, threads):
    out = subprocess.run([binary, f"--preset={name}", f"--threads={threads}", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="tiny,100m")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--binary", default="bazel-bin/tools/train_step_benchmark")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.threads} threads, float32, eager attention")
    print("| preset | params | batch x seq | PyTorch ms/step | Loom ms/step | Loom tokens/s "
          "| Loom GFLOP/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.presets.split(","):
        preset = PRESETS[name]
        torch_ms, params = torch_step_ms(preset, args.threads)
        loom = loom_step(args.binary, name, args.threads)
        assert loom["params"] == params, (loom["params"], params)
        print(f"| {name} | {params / 1e6:.1f}M | {preset['batch']} x {preset['seq']} | "
              f"{torch_ms:.1f} | {loom['ms_per_step']:.1f} | {loom['tokens_per_s']:.0f} | "
              f"{loom['gflops']:.1f} | "
              f"{torch_ms / loom['ms_per_step']:.2f}x |")


if __name__ == "__main__":
    main()
