#!/usr/bin/env python3
"""Models saved by Loom load in transformers and give Loom's logits.

Runs //tests:export_for_transformers, loads each folder it writes with
transformers.LlamaForCausalLM.from_pretrained (single file, tied embeddings,
sharded with an index) and compares the logits with Loom's (max relative
error by norm 1e-5, f32).
"""
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM


def main():
    exporter = sys.argv[1]
    out = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    subprocess.run([exporter, out], check=True)
    torch.set_num_threads(1)
    failures = 0
    for variant in ("untied", "tied", "sharded"):
        folder = os.path.join(out, variant)
        files = sorted(os.listdir(folder))
        model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
        loom = load_file(os.path.join(folder, "loom_logits.safetensors"))
        with torch.no_grad():
            logits = model(input_ids=loom["input_ids"]).logits.double()
        ref = loom["logits"].double()
        err = ((logits - ref).norm() / ref.norm()).item()
        ok = err <= 1e-5
        failures += not ok
        print(f"{variant}: files {files}; logits relative error {err:.2e}: {'ok' if ok else 'FAIL'}")
        if variant == "tied":
            assert model.config.tie_word_embeddings
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        if variant == "sharded":
            assert "model.safetensors.index.json" in files, files
    print(f"interop: {3 - failures} of 3 variants match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
