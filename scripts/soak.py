#!/usr/bin/env python3
"""Redis chaos soak (issue 19, item 4): two instances of the server on one Redis,
under continuous create -> wrong verify -> right verify -> replay load, while Redis
is killed and restarted every 20 s. With --cluster: on a 3-master Redis Cluster
(one replica each) where every 20 s a master is killed, its replica promoted, and
the old master restarted (it rejoins as a replica).

Usage: scripts/soak.py MINUTES [--binary PATH] [--cluster]

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


class Cluster:
    """Three masters with a replica each, on free ports, in a scratch directory."""

    def __init__(self):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="otp-soak-cluster-")
        self.ports = []
        while len(self.ports) < 6:
            p = free_port()
            if p + 10000 < 65536 and p not in self.ports:
                self.ports.append(p)
        self.procs = {}

    def start_node(self, port):
        d = os.path.join(self.dir, str(port))
        os.makedirs(d, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1500",
             "--save", "", "--appendonly", "no", "--dir", d],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cli(self, port, *args):
        out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                             text=True, timeout=10)
        return out.stdout

    def start(self):
        for p in self.ports:
            self.start_node(p)
        time.sleep(0.5)
        subprocess.run(["redis-cli", "--cluster", "create",
                        *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", "1", "--cluster-yes"],
                       capture_output=True, text=True, timeout=60, check=True)
        self.wait_ok(60)

    def healthy(self, port):
        try:
            return "cluster_state:ok" in self.cli(port, "cluster", "info")
        except subprocess.TimeoutExpired:
            return False

    def wait_ok(self, bound):
        """Seconds until every live node says the cluster is ok (None past `bound`)."""
        start = time.time()
        while time.time() - start < bound:
            live = [p for p, proc in self.procs.items() if proc.poll() is None]
            if live and all(self.healthy(p) for p in live):
                return time.time() - start
            time.sleep(0.1)
        return None

    def wait_failover(self, victim, bound):
        """Seconds until a replica has replaced `victim` and the cluster is ok."""
        start = time.time()
        while time.time() - start < bound:
            try:
                masters = self.masters()
            except (subprocess.TimeoutExpired, StopIteration):
                masters = []
            if len(masters) == 3 and victim not in masters and self.wait_ok(0.5) is not None:
                return time.time() - start
            time.sleep(0.1)
        return None

    def masters(self):
        nodes = self.cli(self.alive(), "cluster", "nodes")
        out = []
        for line in nodes.splitlines():
            parts = line.split()
            if len(parts) > 2 and "master" in parts[2] and "fail" not in parts[2]:
                out.append(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return out

    def alive(self):
        return next(p for p, proc in self.procs.items() if proc.poll() is None)

    def kill(self, port):
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait()

    def nodes_var(self):
        return ",".join(f"redis://127.0.0.1:{p}" for p in self.ports)

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Instance:
    def __init__(self, binary, redis_env, master_key):
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(self.port),
            "RUST_LOG": "info", "LOG_FORMAT": "json", "OTP_SENDER": "log",
            "OTP_ID_STORE": "redis", "OTP_KMS": "redis", "OTP_KMS_MASTER_KEY": master_key,
            redis_env[0]: redis_env[1], "REDIS_TIMEOUT_MS": "500",
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
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()

    master_key = subprocess.run([args.binary, "keygen", "--format", "key"], capture_output=True,
                                text=True, check=True).stdout.strip().splitlines()[-1]
    if args.cluster:
        redis = Cluster()
        redis.start()
        redis_env = ("REDIS_CLUSTER_NODES", redis.nodes_var())
    else:
        redis = Redis()
        redis.start()
        redis_env = ("REDIS_URL", f"redis://127.0.0.1:{redis.port}")
    instances = [Instance(args.binary, redis_env, master_key) for _ in range(2)]
    failovers = []
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
            outages += 1
            if args.cluster:
                victim = random.choice(redis.masters())
                redis.kill(victim)
                took = redis.wait_failover(victim, 30)
                failovers.append(took)
                if took is None:
                    stats.violate("the cluster did not fail over within 30 s")
                back = time.time()
                redis.start_node(victim)
            else:
                redis.kill()
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
        if args.cluster:
            redis.stop()
        else:
            redis.kill()

    first, last = rss[0], rss[-1]
    for i, (f, l) in enumerate(zip(first, last)):
        if l > f * 1.5 + 8192:
            stats.violate(f"instance {i} RSS grew from {f} KiB to {l} KiB")
    c = stats.counts
    done = [r for r in resumes if r is not None]
    if args.cluster:
        print("\nRedis chaos soak: 2 instances on a 3-master Redis Cluster, a master killed "
              f"every {CHAOS_EVERY:.0f} s (its replica promoted)")
    else:
        print("\nRedis chaos soak: 2 instances on one Redis, killed every "
              f"{CHAOS_EVERY:.0f} s for {DOWN_FOR:.0f} s")
    print(f"| {'measure':<44} | {'value':>12} |")
    print(f"|{'-' * 46}|{'-' * 14}|")
    rows = [
        ("duration (s)", f"{time.time() - started:.0f}"),
        ("Redis outages (masters killed, with --cluster)", outages),
        ("slowest failover, kill to cluster ok (s)",
         f"{max(f for f in failovers if f is not None):.2f}" if any(f is not None for f in failovers) else "-"),
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
