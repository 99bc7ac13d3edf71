#!/usr/bin/env bash
# The production build, profile-guided: the release binary built once with counters,
# trained on requests of every kind (scripts/pgo/train.rs), then built again with
# what the counters saw, so the compiler lays out, inlines and predicts for the real
# hot paths. A create costs the server about 40 % less CPU than with the plain
# release build (BENCHMARKS.md, "Eighth round"). The Dockerfile builds the image
# this way.
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
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "pgo: PGO_SECONDS must be a whole number of seconds" >&2; exit 2; }

# A cargo configuration's encoded flags would replace RUSTFLAGS, and with it the
# profile: refused rather than a silent plain build.
[ -z "${CARGO_ENCODED_RUSTFLAGS:-}" ] || { echo "pgo: unset CARGO_ENCODED_RUSTFLAGS" >&2; exit 1; }
profdata="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  step "installing the llvm-tools component (for llvm-profdata)"
  rustup component add llvm-tools >/dev/null || { echo "pgo: cannot install llvm-tools" >&2; exit 1; }
fi
[ -x "$profdata" ] || { echo "pgo: llvm-profdata not found at $profdata" >&2; exit 1; }

# The profile of sources that have not changed is reused: a second run (the
# container test's cache volume) rebuilds nothing. Training again would write a new
# profile, and every crate of the optimised build depends on that file.
stamp="$(cat Cargo.toml Cargo.lock scripts/pgo/train.rs $(find src -type f | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)"
if [ -s "$work/merged.profdata" ] && [ "$(cat "$work/profile.stamp" 2>/dev/null)" = "$stamp" ]; then
  step "1-3/4 the sources have not changed since the last training: its profile is reused"
else
  step "1/4 instrumented build"
  # The release profile as it is: a build with other LTO or codegen-unit settings
  # gives functions another shape (or, set in the cargo profile, other symbol
  # names), and their counts would be discarded by the optimised build.
  RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$work/profiles" \
    cargo build --release --locked --quiet --bin secure-otp-server --target-dir "$work/gen"
  rustc -O --edition 2024 scripts/pgo/train.rs -o "$work/train"
  # The build scripts and proc macros ran instrumented too: only the server's counts.
  rm -rf "$work/profiles" "$work/merged.profdata" "$work/profile.stamp"
  mkdir -p "$work/profiles"

  step "2/4 training for ${seconds} s"
  log="$work/train.log"
  # The development `log` sender, named here, from which the trainer reads each code;
  # JSON lines at info as in production, the limits on, the metrics listener on.
  env -i PATH="$PATH" HOME="${HOME:-/root}" HOST=127.0.0.1 PORT=0 LOG_FORMAT=json RUST_LOG=info \
    OTP_SENDER=log OTP_TRUSTED_PROXIES=127.0.0.1 METRICS_ADDR=127.0.0.1:0 \
    "$work/gen/release/secure-otp-server" >"$log" 2>&1 &
  server=$!
  trap 'kill -KILL $server 2>/dev/null || true' EXIT
  failed() { tail -20 "$log" >&2; echo "pgo: $*" >&2; exit 1; }
  addr=""
  for _ in $(seq 100); do
    addr="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|.*http://||')" || true
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || failed "the instrumented server did not start"
  # The trainer's sockets time out after 10 s; this bounds the whole run too.
  timeout "$((seconds + 120))" "$work/train" "$addr" "$log" "$seconds" || failed "the training failed"
  # The counters are written when the process exits normally: stop it gracefully,
  # and wait at most 30 s.
  kill -TERM "$server"
  for _ in $(seq 300); do
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server" 2>/dev/null && failed "the instrumented server did not stop within 30 s"
  wait "$server" || failed "the instrumented server did not stop cleanly"
  trap - EXIT
  rm -f "$log"

  step "3/4 merging the profile"
  "$profdata" merge -o "$work/merged.profdata" "$work/profiles"
  functions="$("$profdata" show "$work/merged.profdata" | sed -n 's/^Total functions: //p')"
  step "the profile counts ${functions:-no} functions"
  [ "${functions:-0}" -gt 1000 ] || { echo "pgo: the profile is nearly empty" >&2; exit 1; }
  echo "$stamp" >"$work/profile.stamp"
fi

step "4/4 optimised build with the profile"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$work/merged.profdata" \
  cargo build --release --locked --quiet --bin secure-otp-server --target-dir "$work/use"
install -D -m 0755 "$work/use/release/secure-otp-server" "$out"
step "built $out"
