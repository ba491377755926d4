#!/usr/bin/env bash
# Two "hosts" in Linux network namespaces joined by a veth pair run one 2 x 2 training job
# (dp_replicate_size 2 x dp_shard_size 2 = 4 ranks, 2 per host) over real TCP between the
# namespaces, through tools/train's launcher flags (--nnodes/--node-rank/--master-addr/
# --master-port). The losses must equal a 1-process run over the same global batches.
#
#   tools/netns_two_hosts.sh bazel-bin/tools/train examples/tiny/data/train.jsonl
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for `ip netns`; traffic stays between the two
# namespaces this script creates (10.77.0.1 <-> 10.77.0.2) and it removes them on exit.
set -euo pipefail
train=$(readlink -f "$1")
data=$(readlink -f "$2")
work=$(mktemp -d)
h0=loom_h0_$$ h1=loom_h1_$$
cleanup() {
  ip netns del "$h0" 2>/dev/null || true
  ip netns del "$h1" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$h0"
ip netns add "$h1"
ip link add "veth0_$$" type veth peer name "veth1_$$"
ip link set "veth0_$$" netns "$h0"
ip link set "veth1_$$" netns "$h1"
ip -n "$h0" addr add 10.77.0.1/24 dev "veth0_$$"
ip -n "$h1" addr add 10.77.0.2/24 dev "veth1_$$"
for h in "$h0" "$h1"; do
  ip -n "$h" link set lo up
done
ip -n "$h0" link set "veth0_$$" up
ip -n "$h1" link set "veth1_$$" up

write_config() {  # dir extra-lines
  mkdir -p "$1"
  cat >"$1/train.yaml" <<YAML
model:
  vocab_size: 264
  hidden_size: 32
  intermediate_size: 64
  num_hidden_layers: 2
  num_attention_heads: 4
  num_key_value_heads: 2
  max_position_embeddings: 64
  bos_token_id: 256
  eos_token_id: 257
  pad_token_id: 258
datasets:
  - path: $data
    type:
      format: "{instruction}\n"
sequence_len: 48
micro_batch_size: 4
gradient_accumulation_steps: $3
max_steps: 3
learning_rate: 1.0e-2
num_threads: 1
logging_steps: 1
output_dir: $1/out
$2
YAML
}
# Per-rank batches (Axolotl's rule): 4 ranks accumulating 1 micro-batch each
# make the global batch of 1 process accumulating 4.
write_config "$work/one" "" 4
write_config "$work/mesh" "dp_replicate_size: 2
dp_shard_size: 2" 1

"$train" --config="$work/one/train.yaml" >"$work/one.log" 2>&1
port=29611
common=(--config="$work/mesh/train.yaml" --nnodes=2 --master-addr=10.77.0.1 --master-port=$port)
ip netns exec "$h1" "$train" "${common[@]}" --node-rank=1 >"$work/h1.log" 2>&1 &
pid1=$!
status0=0
ip netns exec "$h0" "$train" "${common[@]}" --node-rank=0 >"$work/h0.log" 2>&1 || status0=$?
status1=0
wait "$pid1" || status1=$?
cat "$work/h0.log" "$work/h1.log"
if ((status0 != 0 || status1 != 0)); then
  echo "netns_two_hosts: FAILED (host 0 exit $status0, host 1 exit $status1)"
  exit 1
fi
grep -q "topology: 4 ranks, mesh dp_replicate 2 x dp_shard 2 x cp 1 x tp 1" "$work/h0.log"
# Per-step losses and token counts of the 4-rank job equal the 1-process run's.
field() { grep -o "\"$1\":[-0-9.e+]*" "$2" | cut -d: -f2; }
for f in loss trainable_tokens; do
  paste <(field $f "$work/one/out/metrics.jsonl") <(field $f "$work/mesh/out/metrics.jsonl") |
    awk -v f=$f '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * ($1 < 0 ? -$1 : $1)) bad = 1;
                   n++; print f, NR, $1, $2 }
                 END { if (bad || n != 3) { print "mismatch in " f; exit 1 } }'
done
echo "netns_two_hosts: 1 passed, 0 failed"
