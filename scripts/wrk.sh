#!/usr/bin/env bash
# The issue-20 measurement with an external generator: the release binary and axum's
# hello world (examples/hello.rs), each alone on core 0, under wrk on core 1 (one
# thread, 64 connections, closed loop), in alternating rounds. Unlike
# examples/load.rs, nothing of the generator shares the server's process.
#
#   scripts/wrk.sh               3 rounds of 10 s per scenario (about 3 minutes)
#   scripts/wrk.sh 5 5           5 rounds of 5 s
#   OTP_BIN=target/pgo/secure-otp-server scripts/wrk.sh
#                                the profile-guided build (scripts/pgo.sh), as the
#                                image ships it, against the same hello world
#   WRK_PREFILL=1000000 scripts/wrk.sh
#                                mix with a million live sessions: before each mix
#                                run, creates until the server's otp_live_sessions
#                                gauge reads that many (codes then live 600 s, so
#                                none expires during the run)
#
# Scenarios: hello; create (a new address from a new client per request); mix (each
# create's cookie then used once for a verify with a wrong code: half the requests are
# wrong verifies); flow (each create's cookie then used once for a verify with the
# right code, which runs the final action: addresses are test credentials with a fixed
# code, since wrk cannot read codes from the log, so nothing is sent for them). The server runs with every protection on: the abuse limits (clients
# spread by X-Forwarded-For so none is hit), JSON log lines at info to a file, the
# metrics listener, request ids. The sender is the development `log` sender: its line
# stands in for the "code sent" line of the SMTP and webhook senders, so a create
# writes four lines, as in production (the access line, two audit events, the send).
# Printed per run: requests/s, p50 / p99, the CPU share of the server process and of
# wrk, the server's CPU per request, the answers by status; then medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-10}"
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ && "$seconds" =~ ^[1-9][0-9]*$ ]] || [ "$seconds" -lt 2 ]; then
  echo "usage: scripts/wrk.sh [ROUNDS >= 1] [SECONDS >= 2]" >&2
  exit 2
fi

[[ "${WRK_PREFILL:-0}" =~ ^[0-9]+$ ]] || { echo "wrk.sh: WRK_PREFILL is a number of sessions" >&2; exit 2; }
if [ "$(nproc)" -lt 2 ]; then
  echo "wrk.sh: needs two cores (server on one, generator on the other)" >&2
  exit 1
fi
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "wrk.sh: wrk is missing (apt-get install wrk)" >&2
    exit 1
  fi
fi
cargo build --release --quiet --bin secure-otp-server --example hello
bin="${OTP_BIN:-target/release/secure-otp-server}"
[ -x "$bin" ] || { echo "wrk.sh: no binary at $bin" >&2; exit 1; }
echo "wrk.sh: the server is $bin"

server=""
gen=""
work="$(mktemp -d)"
trap 'kill $server $gen 2>/dev/null || true; rm -rf "$work"' EXIT
# The flow scenario's addresses (scripts/wrk/flow.lua) with their fixed code.
python3 -c 'import json, sys; json.dump({f"flow{i}@bench.example": "flowcode42" for i in range(262144)}, sys.stdout)' \
  >"$work/test-credentials.json"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# User plus system clock ticks of a process, all its threads.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "wrk.sh: nothing listens on port $1" >&2
  exit 1
}

# The server's otp_live_sessions gauge, from its metrics listener on port $1.
live() {
  python3 -c 'import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
print(next((int(float(l.split()[-1])) for l in text.splitlines() if l.startswith("otp_live_sessions ")), 0))' "$1"
}

run() { # scenario round
  local scenario="$1" port mport script=() url extra=() prefill=0
  port="$(free_port)"
  mport="$(free_port)"
  [ "$scenario" = flow ] && extra=(OTP_TEST_CREDENTIALS_FILE="$work/test-credentials.json")
  if [ "$scenario" = mix ] && [ "${WRK_PREFILL:-0}" -gt 0 ]; then
    prefill="$WRK_PREFILL"
    extra=(OTP_MAX_AGE=600)
  fi
  if [ "$scenario" = hello ]; then
    taskset -c 0 target/release/examples/hello "127.0.0.1:$port" &
  else
    script=(-s "scripts/wrk/$scenario.lua")
    env -i PATH="$PATH" HOST=127.0.0.1 PORT="$port" OTP_TRUSTED_PROXIES=127.0.0.1 \
      LOG_FORMAT=json RUST_LOG=info METRICS_ADDR="127.0.0.1:$mport" "${extra[@]}" \
      taskset -c 0 "$bin" >"$work/server.log" 2>&1 &
  fi
  server=$!
  url="http://127.0.0.1:$port/"
  wait_port "$port"
  if [ "$prefill" -gt 0 ]; then
    local before now=0
    while [ "$now" -lt "$prefill" ]; do
      before="$now"
      taskset -c 1 wrk -t1 -c64 -d5s -s scripts/wrk/create.lua "$url" >/dev/null
      now="$(live "$mport")"
      [[ "$now" =~ ^[0-9]+$ ]] || { echo "wrk.sh: cannot read otp_live_sessions" >&2; exit 1; }
      [ "$now" -gt "$before" ] || { echo "wrk.sh: the prefill stalled at $now live sessions" >&2; exit 1; }
    done
    echo "wrk.sh: $now live sessions before the run"
  fi
  taskset -c 1 wrk -t1 -c64 -d1s "${script[@]}" "$url" >/dev/null # warm-up
  local s0 s1 w0 w1 t0 t1
  s0="$(ticks "$server")"
  t0="$(date +%s.%N)"
  taskset -c 1 wrk -t1 -c64 -d"${seconds}s" --latency "${script[@]}" "$url" >"$work/wrk.out" &
  gen=$!
  sleep 0.5
  w0="$(ticks "$gen")"
  sleep "$((seconds - 1))"
  w1="$(ticks "$gen")"
  wait "$gen"
  gen=""
  s1="$(ticks "$server")"
  t1="$(date +%s.%N)"
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  python3 - "$scenario" "$2" "$work/wrk.out" "$s0" "$s1" "$t0" "$t1" "$w0" "$w1" \
    "$(getconf CLK_TCK)" "$((seconds - 1))" <<'PY' | tee -a "$work/runs.txt"
import re, sys
scenario, rnd, out, s0, s1, t0, t1, w0, w1, hz, wsecs = sys.argv[1:]
text = open(out).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(pct):
    # wrk prints us, ms, s, m or h, and pads the shorter units with a space.
    value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]
statuses = re.search(r"^statuses (.*)$", text, re.M)
hz = float(hz)
server = (float(s1) - float(s0)) / hz / (float(t1) - float(t0))
gen = (float(w1) - float(w0)) / hz / float(wsecs)
print(f"{scenario:7} round {rnd}  {rps:8.0f} req/s  p50 {ms(50):5.2f} ms  p99 {ms(99):5.2f} ms  "
      f"server {server:4.0%}  wrk {gen:4.0%}  server {server * 1e6 / rps:5.1f} µs/request  "
      f"{statuses.group(1) if statuses else ''}")
PY
}

for r in $(seq "$rounds"); do
  for scenario in hello create mix flow; do run "$scenario" "$r"; done
done

python3 - "$work/runs.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    scenario, rnd = line.split()[0], int(line.split()[2])
    rps = float(re.search(r"([\d.]+) req/s", line).group(1))
    p99 = float(re.search(r"p99\s+([\d.]+) ms", line).group(1))
    us = float(re.search(r"([\d.]+) µs/request", line).group(1))
    runs.setdefault(scenario, []).append((rnd, rps, p99, us))
hello = {rnd: rps for rnd, rps, _, _ in runs["hello"]}
print(f"\nmedians of {len(hello)} rounds; × hello per round, then its median (range)")
for scenario, rows in runs.items():
    ratios = sorted(rps / hello[rnd] for rnd, rps, _, _ in rows)
    print(f"{scenario:7} {statistics.median(r[1] for r in rows):8.0f} req/s  "
          f"p99 {statistics.median(r[2] for r in rows):5.2f} ms  "
          f"server {statistics.median(r[3] for r in rows):5.1f} µs/request  "
          f"× hello {statistics.median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})")
PY
