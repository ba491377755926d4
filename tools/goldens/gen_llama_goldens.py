#!/usr/bin/env python3
"""Writes the PyTorch goldens for //tests:llama_parity_test.

For a 2-layer tiny Llama with grouped-query attention (4 query heads, 2 kv
heads), untied and tied embeddings, on one fixed batch, this saves:
  tests/goldens/llama/<variant>/            the model, by transformers' save_pretrained
  tests/goldens/llama/untied_sharded/      the untied model again, in 30 KB shards
  tests/goldens/llama/<variant>/expected.safetensors
      input_ids, labels (i64 [2, 16]; some labels -100),
      logits (f32 [2, 16, V]), loss (f64 scalar),
      grad.<parameter name> (f32) for every parameter.
  tests/goldens/llama/<variant>/rows.jsonl, loss.txt
      the batch as pretokenized rows, and transformers' loss on it.
The reference runs in float64 (weights are the f32 ones, widened), except
that transformers casts the logits to f32 before its loss; goldens are stored
as f32.

Run with Debian's python3 (torch 1.13) and transformers 4.38:
  /usr/bin/python3 tools/goldens/gen_llama_goldens.py
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "goldens", "llama")


def make(variant, tied):
    torch.manual_seed(1234 + tied)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, rope_theta=10000.0, rms_norm_eps=1e-5,
                         tie_word_embeddings=tied, initializer_range=0.2)
    model = LlamaForCausalLM(config).float()
    # Norm weights away from 1 so their gradients and scaling are exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    out_dir = os.path.join(OUT, variant)
    shutil.rmtree(out_dir, ignore_errors=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    if not tied:
        # The same weights as transformers shards them, with an index.
        sharded_dir = out_dir + "_sharded"
        shutil.rmtree(sharded_dir, ignore_errors=True)
        model.save_pretrained(sharded_dir, safe_serialization=True, max_shard_size="30KB")
    for d in (out_dir, out_dir + "_sharded"):
        gen_cfg = os.path.join(d, "generation_config.json")
        if os.path.exists(gen_cfg):
            os.remove(gen_cfg)

    ids = torch.randint(0, config.vocab_size, (2, 16))
    labels = ids.clone()
    labels[0, :5] = -100   # a masked prompt
    labels[1, 11:] = -100  # masked padding

    ref = model.double()
    out = ref(input_ids=ids, labels=labels)
    out.loss.backward()
    expected = {
        "input_ids": ids.contiguous(),
        "labels": labels.contiguous(),
        "logits": out.logits.detach().float().contiguous(),
        "loss": out.loss.detach().reshape(()).contiguous(),
    }
    for name, p in ref.named_parameters():
        expected["grad." + name] = p.grad.float().contiguous()
    save_file(expected, os.path.join(out_dir, "expected.safetensors"))
    # The same batch as pretokenized jsonl rows plus transformers' loss, for
    # //tests:eval_hf_folder_test (//tools:eval on a transformers folder).
    for d in [out_dir] + ([] if tied else [out_dir + "_sharded"]):
        with open(os.path.join(d, "rows.jsonl"), "w") as f:
            for r in range(ids.shape[0]):
                row = {"input_ids": ids[r].tolist(), "labels": labels[r].tolist()}
                f.write(json.dumps(row) + "\n")
        with open(os.path.join(d, "loss.txt"), "w") as f:
            f.write(f"{out.loss.item():.9f}\n")
    print(variant, "loss", out.loss.item(), "params", len(list(ref.named_parameters())))


if __name__ == "__main__":
    make("untied", tied=False)
    make("tied", tied=True)
