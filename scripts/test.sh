#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs
# the unit tests and the one integration-test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# (Real servers the tests start are added here: redis-server, an SMTP server, ...)
# The delivery tests run a real SMTP server: Python 3 with aiosmtpd (tests/smtp_sink.py).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-aiosmtpd)
# redis-server (and redis-cli, from redis-tools): the scale-out tests start real ones.
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-server)
# nginx: the reverse-proxy test puts a real one (TLS) in front of the binary.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
# Headless Chromium and its driver: the login test drives the demo page in a real browser.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing packages: ${need_apt[*]} (install them, or run as root)" >&2
    exit 1
  fi
fi

if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  python3 -m pip install --quiet aiosmtpd >/dev/null 2>&1 \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd >/dev/null 2>&1 \
    || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >/dev/null; } \
    || { echo "cannot install aiosmtpd (pip install aiosmtpd)" >&2; exit 1; }
fi

# Python packages the tests run, pinned: PyJWT checks our session tokens as an
# independent implementation; Selenium drives the browser.
python_need=()
python3 -c 'import jwt, cryptography' >/dev/null 2>&1 || python_need+=("pyjwt[crypto]==2.10.1")
python3 -c 'import selenium' >/dev/null 2>&1 || python_need+=(-r tests/browser/requirements.txt)
# Schemathesis fuzzes the API from openapi.json (tests/api/api_fuzzing.rs).
[ "$(st --version 2>/dev/null)" = "st, version 4.32.5" ] || python_need+=("schemathesis==4.32.5")
if [ "${#python_need[@]}" -gt 0 ]; then
  python3 -m pip install --quiet "${python_need[@]}" >/dev/null 2>&1 \
    || python3 -m pip install --quiet --break-system-packages "${python_need[@]}" >/dev/null 2>&1 \
    || { echo "cannot install ${python_need[*]} with pip" >&2; exit 1; }
fi

# Unit tests, the binary and the one integration-test binary. The benchmarks and the
# load example are not built here: clippy (`--all-targets`) already compiles them, and
# building criterion and running its benches in test mode cost minutes on 2 cores.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --lib --bins --tests --no-fail-fast "$@"
  cargo test --doc --quiet
else
  cargo test --lib --bins --tests --no-fail-fast "$@"
  cargo test --doc --quiet
fi

# The container image, built and run with Podman (installs podman, runc and
# debootstrap if needed; see the script). A run narrowed to some tests skips it.
if [ "$#" -eq 0 ]; then
  ./scripts/container-test.sh
else
  echo "test.sh: arguments given ($*): the container test (scripts/container-test.sh) was not run"
fi
