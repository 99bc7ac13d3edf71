#!/usr/bin/env bash
# Redis chaos soak: two instances of the server on one real Redis under continuous
# load while Redis is killed and restarted every 20 s (scripts/soak.py has the
# assertions and prints the summary table). CI runs one minute.
#
#   scripts/soak.sh 1              one minute on one Redis (CI)
#   scripts/soak.sh 1 --cluster    one minute on a 3-master Cluster, masters killed (CI)
#   scripts/soak.sh 10             the figures in SECURITY.md
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-1}"
shift || true
command -v redis-server >/dev/null 2>&1 || {
  echo "soak.sh: redis-server is missing (scripts/test.sh installs it)" >&2
  exit 1
}
cargo build --quiet --bin secure-otp-server
exec python3 scripts/soak.py "$minutes" --binary target/debug/secure-otp-server "$@"
