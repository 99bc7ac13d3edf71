#!/usr/bin/env bash
# Builds the image from the Dockerfile with Podman and checks it for real: a
# non-root uid, the health check turning healthy, create -> verify through the
# published port, a clean stop within the grace period, and the image size.
#
# No image registry is reachable on these machines, so the public base images are
# replaced by local stand-ins built with debootstrap (../shared/CONTAINERS.md): a
# builder with gcc that borrows the host's Rust toolchain by volume, and a runtime
# with only what distroless/cc has (glibc, libgcc, CA certificates, a nonroot user).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=localhost/secure-otp-server:test
BUILDER=localhost/otp-builder-base:bookworm
RUNTIME=localhost/otp-runtime-base:bookworm
NAME=otp-container-test
PORT=${CONTAINER_TEST_PORT:-18093}
MAX_MB=40
GRACE=8

fail() { echo "container-test: FAIL: $*" >&2; exit 1; }
step() { echo "container-test: $*"; }

missing=()
for tool in podman runc debootstrap curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}: install podman runc debootstrap curl (needs root)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap curl >/dev/null \
    || fail "cannot install podman runc debootstrap curl with apt-get"
fi

# The sandbox refuses crun's cgroups and the default nproc limit.
pod() { podman --runtime runc --cgroup-manager=cgroupfs "$@"; }
LIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=1000:1000)

work=$(mktemp -d)
cleanup() {
  pod rm -f "$NAME" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- local base images (kept in Podman's store between runs) ---------------------
if ! pod image exists "$BUILDER" || ! pod image exists "$RUNTIME"; then
  step "building local base images with debootstrap"
  root="$work/rootfs"
  debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev bookworm "$root" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  tar -C "$root" -c . | pod import \
    --change 'ENV RUSTUP_HOME=/opt/rustup' \
    --change 'ENV CARGO_HOME=/opt/cargo-home' \
    --change 'ENV PATH=/opt/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BUILDER" >/dev/null

  # distroless/cc: the C runtime, CA certificates, nonroot (65532), nothing else.
  rt="$work/runtime"
  mkdir -p "$rt"/{etc/ssl/certs,tmp,home/nonroot,usr/lib/x86_64-linux-gnu,usr/lib64}
  ln -s usr/lib "$rt/lib"
  ln -s usr/lib64 "$rt/lib64"
  chmod 1777 "$rt/tmp"
  for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1; do
    cp -L "$root/usr/lib/x86_64-linux-gnu/$lib" "$rt/usr/lib/x86_64-linux-gnu/"
  done
  cp -L "$root/usr/lib64/ld-linux-x86-64.so.2" "$rt/usr/lib64/"
  cp -L "$root/etc/ssl/certs/ca-certificates.crt" "$rt/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rt/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rt/etc/group"
  chown 65532:65532 "$rt/home/nonroot"
  tar -C "$rt" -c . | pod import - "$RUNTIME" >/dev/null
fi

[ "${1:-}" = --bases-only ] && { step "base images ready"; exit 0; }

# --- the image --------------------------------------------------------------------
# The shipped image is built profile-guided (scripts/pgo.sh), which takes twice as
# long; the test builds it plainly unless CONTAINER_TEST_PGO=true. What differs is
# one build step: the trainer itself runs in the test suite (tests/api/pgo_trainer.rs).
pgo=${CONTAINER_TEST_PGO:-false}
[ "$pgo" = true ] || [ "$pgo" = false ] || fail "CONTAINER_TEST_PGO must be true or false"
step "building the image ($([ "$pgo" = true ] && echo profile-guided || echo "plain release build"))"
# A profile-guided build borrows the toolchain read-only: it must already have
# llvm-profdata where pgo.sh looks for it.
if [ "$pgo" = true ] && [ ! -x "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata" ]; then
  rustup component add llvm-tools >/dev/null || fail "cannot install the llvm-tools component (rustup)"
fi
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# The target directory is a cache volume: a second run rebuilds nothing.
mkdir -p target/container "$cargo_home/registry"
started=$(date +%s)
pod build "${LIMITS[@]}" --format docker --network host \
  --build-arg BUILDER_IMAGE="$BUILDER" --build-arg RUNTIME_IMAGE="$RUNTIME" --build-arg PGO="$pgo" \
  -v "$rustup_home:/opt/rustup:ro" -v "$cargo_home:/opt/cargo:ro" \
  -v "$cargo_home/registry:/opt/cargo-home/registry" \
  -v /etc/ssl/certs:/etc/ssl/certs:ro \
  -v "$PWD/target/container:/src/target" \
  -t "$IMAGE" . >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; fail "podman build failed"; }
step "image built in $(( $(date +%s) - started )) s"

size=$(pod image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(( (size + 999999) / 1000000 ))
step "image size: ${size_mb} MB ($size bytes; target < ${MAX_MB} MB)"
[ "$size_mb" -lt "$MAX_MB" ] || fail "the image is ${size_mb} MB, over ${MAX_MB} MB"
pod run --rm "${LIMITS[@]}" --entrypoint /usr/local/bin/secure-otp-server "$IMAGE" --version 2>/dev/null \
  | grep -q "secure-otp-server $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" \
  || fail "--version does not print the crate's version"
[ -n "$(pod run --rm "${LIMITS[@]}" --entrypoint /usr/local/bin/secure-otp-server "$IMAGE" keygen 2>/dev/null)" ] \
  || fail "keygen printed nothing"
pod image inspect --format '{{.Config.Healthcheck.Test}}' "$IMAGE" | grep -q healthcheck \
  || fail "the image has no HEALTHCHECK using the binary"

# --- run it -----------------------------------------------------------------------
step "running it on port $PORT"
# Production (the image's default) with the development sender named explicitly, so
# the test can read the code from the log.
pod run -d --name "$NAME" "${LIMITS[@]}" -p "127.0.0.1:$PORT:3000" \
  -e OTP_SENDER=log -e OTP_CREDENTIAL=email -e OTP_HIDE_UNDELIVERABLE=false \
  "$IMAGE" >/dev/null 2>"$work/run.err" || { cat "$work/run.err" >&2; fail "podman run failed"; }
# Without systemd, podman cannot schedule the HEALTHCHECK (it says so on stderr, in
# run.err); the test runs it by hand below.

# The kernel's view of the server process (the image has no ps for `podman top`).
pid=$(pod inspect --format '{{.State.Pid}}' "$NAME")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
step "the process runs as uid $uid ($(pod top "$NAME" user | awk 'NR==2 {print $1}'))"
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "the server runs as uid '${uid}', not a non-root user"

healthy=
for _ in $(seq 1 60); do
  if pod healthcheck run "$NAME" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.5
done
[ -n "$healthy" ] || { pod logs "$NAME" >&2; fail "the health check never turned healthy"; }
status=$(pod inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null || true)
step "health check: healthy (${status:-status not recorded})"

# create -> verify through the published port. Production: the cookie is
# __Host-Http-o with Secure; curl sends it back over http to 127.0.0.1 only
# because it is passed by hand, not from a jar.
base="http://127.0.0.1:$PORT"
created=$(curl -sS -D - -o "$work/create.json" -H 'content-type: application/json' \
  -d '{"email":"container@example.com"}' "$base/api/otp/create")
grep -q '^HTTP/1.1 200' <<<"$created" || { echo "$created" >&2; cat "$work/create.json" >&2; fail "create did not answer 200"; }
cookie=$(grep -i '^set-cookie:' <<<"$created" | head -1 | sed 's/^[Ss]et-[Cc]ookie: *//; s/;.*//')
[[ "$cookie" == __Host-* ]] || fail "production cookie is not __Host-: $cookie"
code=
for _ in $(seq 1 20); do
  # JSON logs (production): the development sender's line has "otp":"<code>".
  code=$(pod logs "$NAME" 2>&1 | grep -o '"otp":"[A-Za-z0-9]*"' | tail -1 | cut -d'"' -f4 || true)
  [ -n "$code" ] && break
  sleep 0.25
done
[ -n "$code" ] || { pod logs "$NAME" >&2; fail "no code in the container's log"; }
verified=$(curl -sS -o "$work/verify.json" -w '%{http_code}' -H "cookie: $cookie" \
  -H 'content-type: application/json' -d "{\"otp\":\"$code\"}" "$base/api/otp/verify")
[ "$verified" = 200 ] || { cat "$work/verify.json" >&2; fail "verify answered $verified"; }
grep -q 'successfully verified' "$work/verify.json" || fail "verify's body: $(cat "$work/verify.json")"
step "create -> verify through the published port: 200"

# A clean stop: SIGTERM, graceful shutdown, exit 0 within the grace period.
started=$(date +%s%N)
pod stop -t "$GRACE" "$NAME" >/dev/null 2>&1
took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
code=$(pod inspect --format '{{.State.ExitCode}}' "$NAME")
step "podman stop: exit code $code after ${took_ms} ms (grace ${GRACE} s)"
[ "$code" = 0 ] || { pod logs "$NAME" >&2; fail "the server exited with $code on SIGTERM"; }
[ "$took_ms" -lt $(( GRACE * 1000 )) ] || fail "the stop took ${took_ms} ms, not within the grace period"
pod logs "$NAME" 2>&1 | grep -q '"stopped"\|stopped' || fail "no 'stopped' line in the log"
step "OK"
