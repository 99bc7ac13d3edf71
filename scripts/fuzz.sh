#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of every parser that reads
# attacker bytes: fuzz/fuzz_targets/*.rs. Each target runs SECONDS (default 30)
# from its committed seeds (fuzz/seeds/<target>, made by the real encoders:
# `cargo run --example fuzz_seeds`) plus a local working corpus (fuzz/corpus/,
# not committed). A crash stops the script with the input in fuzz/artifacts/;
# fix it, then keep the input under fuzz/seeds/<target>/ as a regression case.
#
#   scripts/fuzz.sh            30 s per target (what CI runs)
#   scripts/fuzz.sh 3600       an hour per target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: a nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# One build of every target, then each runs on its own.
cargo +nightly fuzz build -O
for target in $(cargo +nightly fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzz.sh: $target for ${seconds} s"
  # grep hides libFuzzer's chatter; the status kept is cargo-fuzz's.
  set +e
  cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written|thread .* panicked)'
  status="${PIPESTATUS[0]}"
  set -e
  if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: $target crashed (exit $status): the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz.sh: every target ran ${seconds} s without a crash"
