"""Webhook ingest speed: Relais' Shopify receiver against a bare Flask app, in one run.

Both are served by gunicorn exactly as the Procfile's ``web`` line starts Relais
(``config/gunicorn.py``: WEB_CONCURRENCY workers x GUNICORN_THREADS threads, default 2 x 4), with
``RELAIS_ENV=production``, a Redis server of the bench's own and a database per run (PostgreSQL,
and optionally SQLite). Each receives signed, distinct ``orders/paid`` deliveries of ~8 KB:

1. closed loop, ``wrk`` with 32 connections: 5 s warm-up, then 20 s measured → peak rate,
   p50/p99/max, errors, and the CPU gunicorn spent per request; Relais' rate over the bare app's
   is the ratio that counts (the machine may be shared: the load average is printed at the start
   and the end);
2. open loop at half of that peak, on a fixed schedule (``bench/open_loop.py``), latency measured
   from each request's due time → p50/p99/max, errors.

After Relais' runs, the bench checks every acknowledged delivery is in the inbox and queued.

With PostgreSQL, a third app is measured the same way (``--no-floor`` skips it): the floor app
(``bench/ingest_floor.py``), the least a receiver can do and still acknowledge only what is
stored and queued (HMAC, one raw INSERT, one LPUSH). Its ratio to the bare app is the best any
such receiver reaches on the machine: the bound to read Relais' ratio against.

    apt-get install -y wrk      # (macOS: brew install wrk) the closed-loop load generator
    createdb -h 127.0.0.1 -U postgres relais_ingest
    .venv/bin/python bench/ingest.py [--databases postgresql,sqlite] [--duration 20] [--warmup 5]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/relais_ingest   (default; wiped)
    BENCH_PORT=18110   (ports BENCH_PORT..+2: gunicorn, Redis)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import open_loop  # noqa: E402

SECRET = "bench-shopify-app-secret-0123456789"
DOMAIN = "bench-ingest.myshopify.com"
PLACEHOLDER = 987654321987654321
WRK_INSTALL = "wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)"


def body_parts(size: int = 8192) -> tuple[bytes, bytes]:
    """Shopify's order sample, padded to ~``size`` bytes, split around its order id."""
    sample = json.loads((ROOT / "vendor/samples/shopify/order_created_paid_rest_2026-07.json").read_text())
    order = sample.get("order", sample)
    order.update(id=PLACEHOLDER, financial_status="paid")
    raw = json.dumps(order, separators=(",", ":"))
    order["note"] = "x" * max(0, size - len(raw) - 20)
    text = json.dumps(order, separators=(",", ":")).replace("/", "\\/")  # Shopify escapes "/"
    prefix, suffix = text.split(str(PLACEHOLDER), 1)
    return prefix.encode(), suffix.encode()


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


class Ids:
    """Order ids never sent before in this run (each delivery is a new one)."""

    def __init__(self) -> None:
        self.next = 5_000_000_000_000 + int(time.time()) * 100_000

    def take(self, n: int) -> range:
        ids = range(self.next, self.next + n)
        self.next += n
        return ids


def wrk(port: int, seconds: int, connections: int, parts: tuple[bytes, bytes], ids: Ids, work: Path) -> dict:
    """One closed-loop ``wrk`` run; its figures (the Lua script's ``done`` line)."""
    count = connections * 4000 * max(1, seconds) // 10  # far more than any rate seen here
    sigs = work / "signatures.txt"
    with sigs.open("w") as out:
        for order_id in ids.take(count):
            out.write(f"{order_id} {sign(parts[0] + str(order_id).encode() + parts[1])}\n")
    threads = 2
    command = [shutil.which("wrk") or "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(ROOT / "bench/ingest_wrk.lua"), f"http://127.0.0.1:{port}"]
    command += ["--", str(sigs), str(work / "prefix"), str(work / "suffix"), DOMAIN, str(threads)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def open_loop_run(port: int, rate: float, seconds: int, parts: tuple[bytes, bytes], ids: Ids) -> dict:
    order_ids = ids.take(int(rate * seconds) + 1)

    def make(i: int) -> bytes:
        order_id = order_ids[i]
        body = parts[0] + str(order_id).encode() + parts[1]
        head = (
            f"POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Shopify-Topic: orders/paid\r\nX-Shopify-Shop-Domain: {DOMAIN}\r\n"
            f"X-Shopify-Webhook-Id: bench-webhook-{order_id}\r\nX-Shopify-Event-Id: bench-event-{order_id}\r\n"
            f"X-Shopify-API-Version: 2026-10\r\nX-Shopify-Hmac-Sha256: {sign(body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    outcome = open_loop.run("127.0.0.1", port, make, rate, seconds)
    lat = outcome.latencies
    return {
        "rate": rate,
        "sent": outcome.sent,
        "errors": outcome.errors,
        "p50_ms": open_loop.percentile(lat, 50) * 1000,
        "p99_ms": open_loop.percentile(lat, 99) * 1000,
        "max_ms": max(lat, default=float("nan")) * 1000,
    }


def production_env(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "TEST_", "SHOPIFY_"))}
    env.update(
        RELAIS_ENV="production",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="bench-secret-key-" + "k" * 32,
        RELAIS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        SHOPIFY_API_KEY="bench-api-key",
        SHOPIFY_API_SECRET=SECRET,
        PORT=str(port),
        RELAIS_BIND=f"127.0.0.1:{port}",
        PATH=f"{ROOT / '.venv/bin'}:{os.environ.get('PATH', '')}",
    )
    return env


def reset_database(env: dict[str, str]) -> None:
    """An empty database at the migrations' head (the Procfile's ``release`` line), one shop."""
    url = env["DATABASE_URL"]
    if url.startswith("postgresql"):
        with raw_postgresql(url) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    release = shlex.split(procfile("release"))
    subprocess.run(release, cwd=ROOT, env=env, check=True, capture_output=True)
    script = (
        "from config import load_settings\nfrom jobs.runtime import build_runtime\n"
        "import store.models\nfrom store.db import transaction\nfrom store.shops import upsert_shop\n"
        "rt = build_runtime(load_settings())\nwith transaction(rt.sessions) as session:\n"
        f"    upsert_shop(session, rt.vault, 'shopify', {DOMAIN!r}, {{'access_token': 'shpat_bench'}}, '', {{}})\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def procfile(kind: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no {kind} line in the Procfile")


def serve(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:  # not listening yet, or too busy starting to answer in time
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{command} exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.1)
    stop(proc)
    raise SystemExit(f"{command} did not answer /healthz")


class CpuMeter:
    """CPU time (user + system) gunicorn and its workers spend while it runs, sampled every 0.2 s
    so that workers recycled by ``max_requests`` meanwhile still count (up to their last sample)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.parent = psutil.Process(pid)
        self.first: dict[int, float] = self._sample()
        self.last: dict[int, float] = dict(self.first)
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _sample(self) -> dict[int, float]:
        import psutil

        found = {}
        for proc in [self.parent, *self.parent.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            found[proc.pid] = times.user + times.system
        return found

    def _poll(self) -> None:
        while self.running:
            self.last.update(self._sample())
            time.sleep(0.2)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        self.last.update(self._sample())
        return sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def measure(name: str, command: list[str], env: dict[str, str], args: argparse.Namespace, ctx: dict) -> dict:
    port = int(env["PORT"])
    proc = serve(command, env, port)
    try:
        wrk(port, args.warmup, args.connections, ctx["parts"], ctx["ids"], ctx["work"])
        meter = CpuMeter(proc.pid)
        peak = wrk(port, args.duration, args.connections, ctx["parts"], ctx["ids"], ctx["work"])
        peak["cpu_ms"] = meter.stop() * 1000 / max(1, peak["requests"])
        half = open_loop_run(port, peak["rate"] / 2, args.half_duration, ctx["parts"], ctx["ids"])
    finally:
        stop(proc)
    print(
        f"{name:<22} {peak['rate']:8.0f}/s  p50 {peak['p50_us'] / 1000:6.1f} ms  p99 {peak['p99_us'] / 1000:7.1f} ms"
        f"  max {peak['max_us'] / 1000:7.1f} ms  errors {peak['errors']}  cpu {peak['cpu_ms']:.2f} ms/req"
        f" | at {half['rate']:.0f}/s open loop: p50 {half['p50_ms']:.1f} ms  p99 {half['p99_ms']:.1f} ms"
        f"  max {half['max_ms']:.1f} ms  errors {half['errors']}",
        flush=True,
    )
    return {"peak": peak, "half": half}


def check_stored(env: dict[str, str], redis_url: str) -> str:
    """How many deliveries the inbox holds and how many jobs wait (none is processed: no worker)."""
    import redis
    from sqlalchemy import create_engine, text

    from config import normalise_database_url

    engine = create_engine(normalise_database_url(env["DATABASE_URL"]))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM webhook_events")).scalar()
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    queued = client.llen("rq:queue:webhooks") + client.llen("rq:queue:webhooks-bulk")  # fair share: past 50
    return f"inbox rows {rows}, jobs queued {queued}"


def raw_postgresql(url: str):  # type: ignore[no-untyped-def]
    """An autocommitting psycopg connection to a SQLAlchemy-style PostgreSQL URL."""
    import psycopg

    return psycopg.connect(url.replace("+psycopg", ""), autocommit=True)


def floor_table(url: str) -> None:
    """The floor app's inbox, empty (``bench/ingest_floor.py``)."""
    with raw_postgresql(url) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_inbox")
        conn.execute("CREATE TABLE floor_inbox (id bigserial PRIMARY KEY, body bytea NOT NULL)")


def floor_stored(url: str, redis_url: str) -> str:
    """How many deliveries the floor app stored and queued; its table dropped."""
    import redis

    with raw_postgresql(url) as conn:
        rows = conn.execute("SELECT count(*) FROM floor_inbox").fetchone()[0]  # type: ignore[index]
        conn.execute("DROP TABLE floor_inbox")
    queued = redis.Redis.from_url(redis_url).llen("floor:queue")
    return f"inbox rows {rows}, ids queued {queued}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="postgresql", help="postgresql,sqlite")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--half-duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-floor", action="store_true", help="skip the floor app (bench/ingest_floor.py)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(WRK_INSTALL)
    redis_server, redis_cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if redis_server is None or redis_cli is None:
        raise SystemExit("redis-server is not installed: `apt-get install -y redis-server`")
    base = int(os.environ.get("BENCH_PORT", "18110"))
    work = Path(tempfile.mkdtemp(prefix="relais-bench-ingest-"))
    parts = body_parts()
    (work / "prefix").write_bytes(parts[0])
    (work / "suffix").write_bytes(parts[1])
    ctx = {"parts": parts, "ids": Ids(), "work": work}
    redis_port = base + 2
    redis_proc = subprocess.Popen(
        [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    web = shlex.split(procfile("web"))
    print(f"load average at start: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    print(f"body {len(parts[0]) + len(parts[1]) + 19} bytes; {args.connections} connections; web: {' '.join(web)}")
    try:
        time.sleep(0.3)
        urls = {
            "postgresql": os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/relais_ingest"),
            "sqlite": f"sqlite:///{work / 'relais.db'}",
        }
        results = {}
        for database in args.databases.split(","):
            env = production_env(urls[database], redis_url, base)
            if not results:
                results["bare"] = measure("bare Flask", [*web[:-1], "bench.ingest_bare:app"], env, args, ctx)
            if database == "postgresql" and not args.no_floor:
                floor_table(env["DATABASE_URL"])
                floor = [*web[:-1], "bench.ingest_floor:app"]
                results["floor"] = measure("floor app (postgresql)", floor, env, args, ctx)
                print(f"{'':<22} {floor_stored(env['DATABASE_URL'], redis_url)}")
            reset_database(env)
            subprocess.run([redis_cli, "-p", str(redis_port), "flushall"], check=True, capture_output=True)
            results[database] = measure(f"Relais ({database})", web, env, args, ctx)
            print(f"{'':<22} {check_stored(env, redis_url)}")
        bare = results["bare"]["peak"]["rate"]
        if "floor" in results:
            print(
                f"ratio floor app / bare Flask: {results['floor']['peak']['rate'] / bare:.2f}"
                "   (the best any receiver storing and queueing each delivery reaches here)"
            )
        for database in args.databases.split(","):
            result = results[database]
            print(
                f"ratio Relais ({database}) / bare Flask: {result['peak']['rate'] / bare:.2f}"
                f"   p99 at half peak: {result['half']['p99_ms']:.1f} ms"
            )
        print(f"load average at end: {os.getloadavg()}")
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
