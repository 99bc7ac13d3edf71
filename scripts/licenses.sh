#!/usr/bin/env bash
# The dependency licences bundled with the binary and the image:
#   scripts/licenses.sh          regenerates THIRD-PARTY-LICENSES.html (cargo-about,
#                                `cargo install cargo-about --locked --features cli`)
#   scripts/licenses.sh --check  fails if a crate of the release build is missing
#                                from it (CI; needs only cargo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=THIRD-PARTY-LICENSES.html

if [ "${1:-}" != --check ]; then
  command -v cargo-about >/dev/null 2>&1 \
    || { echo "cargo-about is missing: cargo install cargo-about --locked --features cli" >&2; exit 1; }
  cargo about generate --locked --fail -o "$OUT" scripts/licenses/about.hbs
  echo "wrote $OUT"
fi

# Every crate the release binary links (normal dependencies, default features) must
# be listed, at its locked version.
[ -f "$OUT" ] || { echo "$OUT is missing: run scripts/licenses.sh" >&2; exit 1; }
missing=$(cargo tree --locked -e normal --prefix none -f '{p}' 2>/dev/null \
  | sed -n 's/^\([A-Za-z0-9_-]*\) v\([^ ]*\).*/\1@\2/p' | sort -u \
  | grep -v '^secure-otp-server@' \
  | while read -r crate; do
      grep -q "data-crate=\"$crate\"" "$OUT" || echo "$crate"
    done)
if [ -n "$missing" ]; then
  echo "$OUT does not list these crates of the release build (run scripts/licenses.sh):" >&2
  echo "$missing" >&2
  exit 1
fi
echo "$OUT lists every crate of the release build"
