#!/usr/bin/env bash
# The production build, profile-guided: the release binary built once with counters,
# trained on requests of every kind (scripts/pgo/train.rs), then built again with
# what the counters saw, so the compiler lays out, inlines and predicts for the real
# hot paths. A create costs the server about 35 % less CPU than the plain release
# build (BENCHMARKS.md, "Eighth round"). The Dockerfile builds the image this way.
#
#   scripts/pgo.sh [OUT]    the binary goes to OUT (default target/pgo/secure-otp-server)
#
# Needs llvm-profdata from the toolchain's llvm-tools component (installed with
# rustup when missing). PGO_SECONDS (default 20) sets the training time. About
# 11 minutes on 2 cores from clean: two release builds, the first instrumented.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/pgo/secure-otp-server}"
seconds="${PGO_SECONDS:-20}"
work="$PWD/target/pgo"
step() { echo "pgo: $*"; }

profdata="$(find "$(rustc --print sysroot)" -name llvm-profdata -type f 2>/dev/null | head -1)"
if [ -z "$profdata" ]; then
  step "installing the llvm-tools component (for llvm-profdata)"
  rustup component add llvm-tools >/dev/null
  profdata="$(find "$(rustc --print sysroot)" -name llvm-profdata -type f | head -1)"
fi
[ -x "$profdata" ] || { echo "pgo: llvm-profdata not found" >&2; exit 1; }

step "1/4 instrumented build"
# The release profile as it is: a build with other LTO or codegen-unit settings
# gives functions another shape (or, set in the cargo profile, other symbol names),
# and their counts would be discarded by the optimised build.
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$work/profiles" \
  cargo build --release --locked --quiet --bin secure-otp-server --target-dir "$work/gen"
rustc -O --edition 2024 scripts/pgo/train.rs -o "$work/train"
# The build scripts and proc macros ran instrumented too: only the server's counts.
rm -rf "$work/profiles" "$work/merged.profdata"
mkdir -p "$work/profiles"

step "2/4 training for ${seconds} s"
log="$work/train.log"
# Development defaults (the log sender, from which the trainer reads each code),
# JSON lines at info as in production, the limits on, the metrics listener on.
env -i PATH="$PATH" HOME="${HOME:-/root}" HOST=127.0.0.1 PORT=0 LOG_FORMAT=json RUST_LOG=info \
  OTP_TRUSTED_PROXIES=127.0.0.1 METRICS_ADDR=127.0.0.1:0 \
  "$work/gen/release/secure-otp-server" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 100); do
  addr="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|.*http://||')" || true
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; echo "pgo: the instrumented server did not start" >&2; exit 1; }
"$work/train" "$addr" "$log" "$seconds"
# The counters are written when the process exits normally: stop it gracefully.
kill -TERM "$server"
wait "$server" || { echo "pgo: the instrumented server did not stop cleanly" >&2; exit 1; }
trap - EXIT

rm -f "$log"
step "3/4 merging the profile"
"$profdata" merge -o "$work/merged.profdata" "$work/profiles"

step "4/4 optimised build with the profile"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$work/merged.profdata" \
  cargo build --release --locked --quiet --bin secure-otp-server --target-dir "$work/use"
install -D -m 0755 "$work/use/release/secure-otp-server" "$out"
step "built $out"
