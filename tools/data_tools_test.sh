#!/usr/bin/env bash
# The data tools end to end: //tools:tokenize against the committed goldens,
# //tools:pack on a small lengths file, //tools:preprocess twice (a prepared
# cache miss, then a hit), and the errors a user sees.
#
#   data_tools_test.sh PREPROCESS PACK TOKENIZE TOKENIZER_DIR
set -euo pipefail
preprocess=$(realpath "$1"); pack=$(realpath "$2"); tokenize=$(realpath "$3")
tok_dir=$(realpath "$4")
cd "${TEST_TMPDIR}"

fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect FILE NEEDLE
  grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks: $2"; }
}

# ---- tokenize: the golden ids of two texts, then the byte tokenizer.
golden() { grep -F "{\"text\": \"$1\"," "${tok_dir}/goldens.jsonl" | sed 's/.*"ids": \(\[[^]]*\]\).*/\1/'; }
printf 'hello world\nHello, World! 1234567 89\n' | "${tokenize}" --tokenizer="${tok_dir}" > ids.txt 2> tok.err
[[ "$(sed -n 1p ids.txt)" == "$(golden 'hello world')" ]] || fail "tokenize: $(sed -n 1p ids.txt) != $(golden 'hello world')"
[[ "$(sed -n 2p ids.txt)" == "$(golden 'Hello, World! 1234567 89')" ]] || fail "tokenize line 2"
expect tok.err "2 lines"
expect tok.err "MB/s"
[[ "$(echo hi | "${tokenize}" --tokenizer=byte 2>/dev/null)" == "[104, 105]" ]] || fail "byte tokenizer"
[[ "$(echo hi | "${tokenize}" --tokenizer=byte --special_tokens 2>/dev/null)" == "[256, 104, 105]" ]] || fail "BOS"
if "${tokenize}" --tokenizer=/nonexistent < /dev/null 2> err.txt; then fail "bad tokenizer accepted"; fi
expect err.txt "/nonexistent"

# ---- pack.
printf '3\n5\n2\n\n4\n1\n3\n2\n' > lengths.txt
"${pack}" --capacity=10 --lengths=lengths.txt --output=bins.jsonl 2> pack.err
[[ $(wc -l < bins.jsonl) -eq 2 ]] || fail "expected 2 bins, got $(cat bins.jsonl)"
expect pack.err "7 samples, 20 tokens -> 2 bins of 10 (lower bound 2): efficiency 1.0000"
# Every index exactly once.
[[ "$(tr -d '[] ' < bins.jsonl | tr ',' '\n' | sort -n | tr '\n' ' ')" == "0 1 2 3 4 5 6 " ]] || fail "indices"
"${pack}" --capacity=10 --lengths=lengths.txt --sequential > seq.jsonl 2> /dev/null
[[ "$(head -1 seq.jsonl)" == "[0, 1, 2]" ]] || fail "sequential: $(head -1 seq.jsonl)"
printf '3\nfive\n' > bad.txt
if "${pack}" --capacity=10 --lengths=bad.txt 2> err.txt; then fail "bad lengths accepted"; fi
expect err.txt "bad.txt:2: expected a positive integer length, got \"five\""
printf '11\n' > long.txt
if "${pack}" --capacity=10 --lengths=long.txt 2> err.txt; then fail "too long accepted"; fi
expect err.txt "sample 0 has length 11"

# ---- preprocess: cache miss, then hit.
for i in $(seq 1 40); do echo "{\"text\": \"row $i $(printf 'x%.0s' $(seq 1 $((i % 9 + 1))))\"}"; done > rows.jsonl
cat > pre.yaml <<YAML
model:
  vocab_size: 264
  hidden_size: 32
  intermediate_size: 64
  num_hidden_layers: 1
  num_attention_heads: 2
datasets:
  - path: rows.jsonl
    type: completion
sequence_len: 32
micro_batch_size: 2
gradient_accumulation_steps: 2
learning_rate: 1.0e-3
sample_packing: true
dataset_prepared_path: prepared
YAML
"${preprocess}" --config=pre.yaml > first.txt 2>&1 || { cat first.txt; fail "preprocess"; }
expect first.txt "40 rows, 40 kept"
expect first.txt "prepared cache miss"
expect first.txt "| packing efficiency |"
expect first.txt "| steps per epoch |"
"${preprocess}" --config=pre.yaml > second.txt 2>&1
expect second.txt "prepared cache hit"
ls prepared/*.loomprep > /dev/null || fail "no prepared file"
if "${preprocess}" --config=missing.yaml 2> err.txt; then fail "missing config accepted"; fi
expect err.txt "missing.yaml: cannot open"
echo "data tools: all checks passed"
