#!/usr/bin/env python3
"""Redis chaos soak (issue 19, item 4): two instances of the server on one Redis,
under continuous create -> wrong verify -> right verify -> replay load, while Redis
is killed and restarted every 20 s.

Usage: scripts/soak.py MINUTES [--binary PATH]

Asserts, and prints a summary table:
  * no wrong code is ever accepted;
  * no session succeeds twice (a verified cookie replayed is refused);
  * no request hangs past its timeout (5 s);
  * every 5xx during an outage is 503 with Retry-After;
  * service resumes within 2 s of Redis coming back (a create succeeds on each instance);
  * RSS stays flat (the last sample at most 1.5x the first after warm-up, +8 MiB).
Codes come from the development log sender's JSON lines. Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

REQUEST_TIMEOUT = 5.0
CHAOS_EVERY = 20.0
DOWN_FOR = 3.0
RESUME_BOUND = 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


class Instance:
    def __init__(self, binary, redis_port, master_key):
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(self.port),
            "RUST_LOG": "info", "LOG_FORMAT": "json", "OTP_SENDER": "log",
            "OTP_ID_STORE": "redis", "OTP_KMS": "redis", "OTP_KMS_MASTER_KEY": master_key,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}", "REDIS_TIMEOUT_MS": "500",
            "OTP_LIMIT_SENDS_PER_CREDENTIAL": "off", "OTP_LIMIT_FAILURES_PER_CREDENTIAL": "off",
            "OTP_LIMIT_CREATES_PER_IP": "off", "OTP_LIMIT_VERIFIES_PER_IP": "off",
            "OTP_LIMIT_SENDS_PER_PREFIX": "off", "OTP_PUMPING_MIN_SENDS": "off",
            "OTP_HIDE_UNDELIVERABLE": "false", "OTP_RESEND_BLOCK_SECONDS": "0",
        }
        self.proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.codes = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError("the server did not start")

    def _read(self):
        for line in self.proc.stdout:
            if "listening on" in line:
                self.ready.set()
            if "otp-sender" not in line:
                continue
            try:
                fields = json.loads(line)["fields"]
                email = json.loads(fields["credential"])["email"]
            except (ValueError, KeyError, TypeError):
                continue
            with self.lock:
                self.codes[email] = fields["otp"]

    def code_for(self, email, wait=3.0):
        deadline = time.time() + wait
        while time.time() < deadline:
            with self.lock:
                if email in self.codes:
                    return self.codes.pop(email)
            time.sleep(0.01)
        return None

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.violations = []

    def add(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def violate(self, text):
        with self.lock:
            if len(self.violations) < 20:
                self.violations.append(text)
            self.counts["VIOLATIONS"] = self.counts.get("VIOLATIONS", 0) + 1


def request(port, method, path, body=None, cookie=None, ctype=None):
    """(status, headers dict, body text), or (None, {}, reason) on a timeout/transport error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    headers = {}
    if cookie:
        headers["Cookie"] = f"o={cookie}"
    if ctype:
        headers["Content-Type"] = ctype
    started = time.time()
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, text
    except (socket.timeout, TimeoutError):
        return None, {}, f"timeout after {time.time() - started:.1f}s"
    except OSError as e:
        return None, {}, f"transport: {e}"
    finally:
        conn.close()


def set_cookie(headers):
    raw = headers.get("set-cookie", "")
    first = raw.split(";", 1)[0]
    if first.startswith("o=") and len(first) > 2:
        return first[2:]
    return None


def check_5xx(stats, status, headers, what):
    if status is None:
        stats.violate(f"{what}: no answer within {REQUEST_TIMEOUT}s")
    elif status >= 500:
        stats.add("503" if status == 503 else f"{status}")
        if status != 503 or "retry-after" not in headers:
            stats.violate(f"{what}: {status} without being a 503 with Retry-After")


def worker(instances, stats, stop, n):
    i = 0
    while not stop.is_set():
        i += 1
        email = f"soak{n}-{i}-{random.getrandbits(32)}@example.com"
        a, b = random.sample(instances, 2)
        status, headers, _ = request(a.port, "POST", "/api/otp/create",
                                     json.dumps({"email": email}), ctype="application/json")
        check_5xx(stats, status, headers, "create")
        if status != 200:
            continue
        stats.add("created")
        cookie = set_cookie(headers)
        code = a.code_for(email)
        if cookie is None or code is None:
            continue
        wrong = ("1" if code[0] != "1" else "2") + code[1:]
        status, headers, _ = request(b.port, "POST", "/api/otp/verify", f"otp={wrong}", cookie,
                                     "application/x-www-form-urlencoded")
        check_5xx(stats, status, headers, "wrong verify")
        if status == 200:
            stats.violate(f"a wrong code was accepted for {email}")
        cookie = set_cookie(headers) or cookie
        status, headers, _ = request(a.port, "POST", "/api/otp/verify", f"otp={code}", cookie,
                                     "application/x-www-form-urlencoded")
        check_5xx(stats, status, headers, "right verify")
        if status != 200:
            continue
        stats.add("verified")
        status, headers, _ = request(b.port, "POST", "/api/otp/verify", f"otp={code}", cookie,
                                     "application/x-www-form-urlencoded")
        check_5xx(stats, status, headers, "replay")
        if status == 200:
            stats.violate(f"a verified session succeeded twice for {email}")
        else:
            stats.add("replays refused")


def first_create_after(instance, since, bound=15.0):
    """Seconds from `since` until a create on `instance` succeeds (polling every 50 ms)."""
    while time.time() - since < bound:
        status, _, _ = request(instance.port, "POST", "/api/otp/create",
                               json.dumps({"email": f"probe-{random.getrandbits(32)}@example.com"}),
                               ctype="application/json")
        if status == 200:
            return time.time() - since
        time.sleep(0.05)
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("minutes", type=float)
    parser.add_argument("--binary", default="target/debug/secure-otp-server")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    master_key = subprocess.run([args.binary, "keygen", "--format", "key"], capture_output=True,
                                text=True, check=True).stdout.strip().splitlines()[-1]
    redis = Redis()
    redis.start()
    instances = [Instance(args.binary, redis.port, master_key) for _ in range(2)]
    stats, stop = Stats(), threading.Event()
    workers = [threading.Thread(target=worker, args=(instances, stats, stop, n), daemon=True)
               for n in range(args.workers)]
    for w in workers:
        w.start()
    started = time.time()
    end = started + args.minutes * 60
    rss = []
    resumes = []
    outages = 0
    try:
        time.sleep(5)
        rss.append([x.rss_kib() for x in instances])
        while time.time() + CHAOS_EVERY < end:
            time.sleep(CHAOS_EVERY - DOWN_FOR)
            redis.kill()
            outages += 1
            time.sleep(DOWN_FOR)
            redis.start()
            back = time.time()
            for x in instances:
                took = first_create_after(x, back)
                resumes.append(took)
                if took is None or took > RESUME_BOUND:
                    stats.violate(f"service resumed after {took}s (bound {RESUME_BOUND}s)")
            rss.append([x.rss_kib() for x in instances])
        time.sleep(max(0.0, end - time.time()))
    finally:
        stop.set()
        for w in workers:
            w.join(REQUEST_TIMEOUT * 4)
        rss.append([x.rss_kib() for x in instances])
        for x in instances:
            x.stop()
        redis.kill()

    first, last = rss[0], rss[-1]
    for i, (f, l) in enumerate(zip(first, last)):
        if l > f * 1.5 + 8192:
            stats.violate(f"instance {i} RSS grew from {f} KiB to {l} KiB")
    c = stats.counts
    done = [r for r in resumes if r is not None]
    print("\nRedis chaos soak: 2 instances on one Redis, killed every "
          f"{CHAOS_EVERY:.0f} s for {DOWN_FOR:.0f} s")
    print(f"| {'measure':<44} | {'value':>12} |")
    print(f"|{'-' * 46}|{'-' * 14}|")
    rows = [
        ("duration (s)", f"{time.time() - started:.0f}"),
        ("Redis outages", outages),
        ("sessions created", c.get("created", 0)),
        ("sessions verified", c.get("verified", 0)),
        ("verified cookies replayed and refused", c.get("replays refused", 0)),
        ("503 answers (all with Retry-After)", c.get("503", 0)),
        ("wrong codes accepted", sum("wrong code" in v for v in stats.violations)),
        ("sessions that succeeded twice", sum("twice" in v for v in stats.violations)),
        ("requests past the 5 s timeout", sum("no answer" in v for v in stats.violations)),
        ("slowest resume after Redis returned (s)", f"{max(done):.2f}" if done else "-"),
        ("RSS first / last, instance A (KiB)", f"{first[0]} / {last[0]}"),
        ("RSS first / last, instance B (KiB)", f"{first[1]} / {last[1]}"),
        ("violations", c.get("VIOLATIONS", 0)),
    ]
    for name, value in rows:
        print(f"| {name:<44} | {str(value):>12} |")
    for v in stats.violations:
        print("VIOLATION:", v)
    ok = c.get("VIOLATIONS", 0) == 0 and c.get("verified", 0) > 0 and outages >= 1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
