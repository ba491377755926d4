#!/usr/bin/env bash
# The command-line tools end to end: //tools:train on a short run of the
# embedded example's data, //tools:eval on what it saved, and the errors a
# user sees for a bad config.
#
#   train_eval_test.sh TRAIN EVAL TRAIN_JSONL EVAL_JSONL
set -euo pipefail
train=$(realpath "$1"); eval=$(realpath "$2")
train_data=$(realpath "$3"); eval_data=$(realpath "$4")
cd "${TEST_TMPDIR}"

fail() { echo "FAIL: $*" >&2; exit 1; }

cat > short.yaml <<YAML
model:
  vocab_size: 264
  hidden_size: 64
  intermediate_size: 128
  num_hidden_layers: 2
  num_attention_heads: 4
  num_key_value_heads: 2
  bos_token_id: 256
  eos_token_id: 257
  pad_token_id: 258
datasets:
  - path: ${train_data}
    type:
      format: "{instruction}\n"
test_datasets:
  - path: ${eval_data}
    type:
      format: "{instruction}\n"
sequence_len: 64
micro_batch_size: 16
max_steps: 100
learning_rate: 3.0e-3
warmup_steps: 5
output_dir: out
logging_steps: 10
YAML

"$train" --config=short.yaml > train.out 2> train.err || { cat train.err; fail "train exited $?"; }
grep -q "trained 100 steps" train.out || fail "no summary: $(cat train.out)"
for f in out/config.json out/model.safetensors out/metrics.jsonl; do
  [[ -s $f ]] || fail "missing $f"
done
[[ $(grep -c '"grad_norm"' out/metrics.jsonl) == 100 ]] || fail "metrics.jsonl lacks 100 steps"
grep -q "eval (end, step 100)" train.err || fail "no final eval in the log"
# The loss falls by a clear margin: "loss A -> B" with B < A / 2.
read -r first last < <(sed -n 's/.*: loss \([0-9.]*\) -> \([0-9.]*\)$/\1 \2/p' train.out)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 2) }' || fail "loss $first -> $last"

# //tools:eval on the saved model and the config's test set gives what the
# trainer's final evaluation gave in memory.
"$eval" --model=out --config=short.yaml > eval.out 2> eval.err || { cat eval.err; fail "eval"; }
loss=$(sed -n 's/^loss \([0-9.]*\)  perplexity.*/\1/p' eval.out)
match=$(sed -n 's/^exact match \([0-9]*\/200\).*/\1/p' eval.out)
[[ -n $loss && -n $match ]] || fail "eval output: $(cat eval.out)"
grep -q "eval (end, step 100): loss $loss, .*exact match $match" train.err ||
  fail "eval tool (loss $loss, $match) differs from the trainer: $(grep 'eval (end' train.err)"
"$eval" --model=out --data="$eval_data" --format='{instruction}
' --json | grep -q "\"exact_matches\":${match%/200}," || fail "eval --format --json"

# Errors name the file, the line and the key, and exit with 2.
sed 's/^learning_rate:/learnin_rate:/' short.yaml > typo.yaml
if "$train" --config=typo.yaml > /dev/null 2> typo.err; then fail "typo accepted"; fi
grep -q "typo.yaml:22: unknown key 'learnin_rate', did you mean 'learning_rate'?" typo.err ||
  fail "typo message: $(cat typo.err)"
sed "s|path: ${train_data}|path: missing.jsonl|" short.yaml > missing.yaml
status=0; "$train" --config=missing.yaml > /dev/null 2> missing.err || status=$?
[[ $status == 2 ]] || fail "missing dataset exit status $status"
grep -q "'datasets\[0\].path': file 'missing.jsonl' not found" missing.err ||
  fail "missing message: $(cat missing.err)"
if "$eval" --model=nowhere --data="$eval_data" 2> nomodel.err; then fail "eval accepted no model"; fi
grep -q "nowhere/config.json" nomodel.err || fail "eval message: $(cat nomodel.err)"
echo "train/eval tools: ok"
