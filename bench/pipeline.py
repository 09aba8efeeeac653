"""Webhook-to-provider throughput, latency and worker memory: 5,000 paid orders end to end.

Issue 14's goal: at least 100 orders/s inside 512 MB of worker memory, the provider answering
in 100 ms. Every part is the real one but the two outside parties:

- Redis: a redis-server of the bench's own (port 18201, no persistence);
- web: the Procfile's ``web`` line (gunicorn) on port 18202, production settings;
- worker: the Procfile's ``worker`` line (``python -m jobs.worker``), configured by
  ``--processes`` / ``--threads`` (RELAIS_WORKER_PROCESSES / RELAIS_WORKER_THREADS);
- Shopify's side: sender threads POST signed ``orders/paid`` deliveries (base64 HMAC-SHA256 of
  the raw body, as Shopify signs) to ``/webhooks/shopify`` at ``--rate`` per second, spread over
  ``--shops`` shops;
- the provider: the ShipBob fake (``tests/fakes/shipbob.py``: its validation, duplicate
  references, sliding-window rate limit) on port 18203, answering every call after
  ``--latency`` seconds; every shop is on one ShipBob account whose per-account limiter is
  on (at 100,000 per minute, as in the fault drill, so that it is exercised, not binding).

Latency per order: the moment its delivery was answered 200 by the web (the delivery is then
stored and its job enqueued) to the moment the provider received its create call. Throughput:
orders at the provider / (last arrival - first delivery sent). Peak memory: the worker's
process tree (pool parent, its workers, cron), proportional set size (shared pages counted
once), sampled every 0.5 s. The machine's load average is printed: it is shared. CPU per order
of every part (worker, web, redis-server, PostgreSQL, the bench itself) and of the whole machine:
at 100 orders/s, the machine has 1000 x cores / 100 ms of CPU to spend on each order.

    .venv/bin/python bench/pipeline.py [--orders 5000] [--rate 150] [--processes 2] [--threads 16]
    .venv/bin/python bench/pipeline.py --processes 8 --threads 1      # the previous configuration
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/relais_pipeline  (default: a SQLite file)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bench.worker_throughput import pss_mb  # noqa: E402
from cli.serve import upgrade_database  # noqa: E402
from config import load_settings, normalise_database_url  # noqa: E402
from integrations.fulfilment.reference import make_reference  # noqa: E402
from jobs.runtime import build_runtime  # noqa: E402
from store.db import transaction  # noqa: E402
from store.shops import upsert_shop  # noqa: E402
from tests.drills.processes import procfile_command, redis_binary  # noqa: E402
from tests.fakes.shipbob import FakeShipBob, _RawHeaders, make_secret  # noqa: E402
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order  # noqa: E402

REDIS_PORT, WEB_PORT, SHIPBOB_PORT, NOBODY_PORT = 18201, 18202, 18203, 18209
APP_SECRET = "bench-shopify-app-secret-0123456789abcdef"  # the bench's own made-up app


class SlowShipBob(FakeShipBob):
    """The ShipBob fake answering after ``latency``; notes when each reference first arrived."""

    def __init__(self, latency: float, **options: Any) -> None:
        super().__init__(**options)
        self.latency = latency
        self.arrivals: dict[str, float] = {}
        self.creates: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        arrived = time.monotonic()
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").endswith("/order"):
            environ["bench.arrived"] = arrived
        answer = super().__call__(environ, start_response)  # its rate limit counts arrivals, as ShipBob's
        time.sleep(self.latency)
        return answer

    def _create_order(self, request: Any, raw: dict[str, str]) -> Any:
        body = request.get_json(silent=True) or {}
        reference = str(body.get("reference_id", ""))
        with self._lock:
            self.creates[reference] += 1
            self.arrivals.setdefault(reference, request.environ.get("bench.arrived", time.monotonic()))
        return super()._create_order(request, raw)


def tree_pids(root_pid: int) -> list[int]:
    pids = [root_pid]
    for pid in pids:
        with contextlib.suppress(OSError):
            pids.extend(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    return pids


def cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) of a process tree so far, its reaped children included: the
    figure a shared machine's load does not change much."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root_pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def machine_cpu(worker: int, web: int, redis_pid: int) -> dict[str, float]:
    """CPU seconds so far of every part on the machine: the worker and web trees, redis-server,
    PostgreSQL (its processes, whoever they serve: the bench's database is the only busy one),
    and this process (the senders standing in for Shopify, the ShipBob fake)."""
    import psutil

    database = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                database += times.user + times.system
    own = os.times()
    return {
        "worker": cpu_seconds(worker),
        "web": cpu_seconds(web),
        "redis-server": cpu_seconds(redis_pid),
        "PostgreSQL": database,
        "bench (senders, ShipBob fake)": own.user + own.system,
    }


def start_redis(folder: Path, port: int = REDIS_PORT) -> subprocess.Popen[bytes]:
    """A Redis server of the bench's own on ``port``, no persistence; waits until it answers."""
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        with contextlib.suppress(redis.ConnectionError):
            client.ping()
            return process
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on port {port}")


def fresh_database(folder: Path) -> str:
    url = os.environ.get("BENCH_DATABASE_URL", "")
    if not url:
        return f"sqlite:///{folder / 'bench.db'}"
    url = normalise_database_url(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def environment(database_url: str, args: argparse.Namespace, shipbob_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "RELAIS_", "SHOPIFY_", "GUNICORN_"))}
    env.update(
        RELAIS_ENV="production",
        SECRET_KEY="bench-secret-key-" + "x" * 32,
        RELAIS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        SHOPIFY_API_KEY="bench-api-key",
        SHOPIFY_API_SECRET=APP_SECRET,
        SHOPIFY_ADMIN_URL=f"http://127.0.0.1:{NOBODY_PORT}/{{shop}}",  # nobody: cron's Shopify calls fail fast
        SHIPBOB_API_URL=shipbob_url,
        DATABASE_URL=database_url,
        REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
        PORT=str(WEB_PORT),
        RELAIS_BIND=f"127.0.0.1:{WEB_PORT}",
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{WEB_PORT}",
        RELAIS_PUBLIC_URL=f"http://127.0.0.1:{WEB_PORT}",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        RELAIS_WORKER_PROCESSES=str(args.processes),
        RELAIS_WORKER_THREADS=str(args.threads),
    )
    return env


def register_shops(env: dict[str, str], shipbob: FakeShipBob, count: int) -> dict[str, int]:
    """Domain → shop id; every shop on the one ShipBob account (its limiter shared)."""
    runtime = build_runtime(load_settings(env), redis.Redis(port=REDIS_PORT))
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "webhook_secret": make_secret(),
        "rate_limit": "100000",
        "rate_window": "60",
    }
    shops: dict[str, int] = {}
    with transaction(runtime.sessions) as session:
        for n in range(count):
            domain = f"bench-{n}.myshopify.com"
            credentials = {"access_token": "shpat_bench"}
            shop = upsert_shop(session, runtime.vault, "shopify", domain, credentials, "shipbob", options)
            session.flush()
            shops[domain] = shop.id
    runtime.engine.dispose()
    return shops


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url}/healthz never answered 200")


def send(
    url: str, plan: list[tuple[str, int]], rate: float, senders: int, sent_at: dict[int, float], refused: Counter[str]
) -> None:
    """POST every delivery at ``rate`` per second (0: as fast as the web answers); retry non-2xx
    after a second, as Shopify does (later and fewer times)."""
    work: queue.Queue[tuple[int, str, int] | None] = queue.Queue()
    for n, (domain, order_id) in enumerate(plan):
        work.put((n, domain, order_id))
    start = time.monotonic()
    lock = threading.Lock()

    def sender() -> None:
        with requests.Session() as http:
            while True:
                item = work.get()
                if item is None:
                    return
                n, domain, order_id = item
                if rate:
                    delay = start + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                body = body_of(paid_order(order_id, name=f"#B{order_id}"))
                webhook_id = str(uuid.uuid4())
                for _attempt in range(10):
                    headers = headers_for(domain, "orders/paid", body, APP_SECRET, webhook_id=webhook_id)
                    try:
                        answer = http.post(f"{url}/webhooks/shopify", data=body, headers=headers, timeout=5)
                        status = str(answer.status_code)
                    except requests.RequestException as exc:
                        status = type(exc).__name__
                    if status == "200":
                        with lock:
                            sent_at[order_id] = time.monotonic()
                        break
                    with lock:
                        refused[status] += 1
                    time.sleep(1)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for _ in threads:
        work.put(None)
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=150.0, help="deliveries per second offered (0: flood)")
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--shops", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--processes", type=int, default=int(os.environ.get("RELAIS_WORKER_PROCESSES", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("RELAIS_WORKER_THREADS", 16)))
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="relais-bench-pipeline-"))
    redis_server = start_redis(folder)
    shipbob = SlowShipBob(args.latency, rate_limit=100_000, rate_window=60)
    server = make_server("127.0.0.1", SHIPBOB_PORT, shipbob, threaded=True, request_handler=_RawHeaders)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    shipbob_url = f"http://127.0.0.1:{SHIPBOB_PORT}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        database_url = fresh_database(folder)
        env = environment(database_url, args, shipbob_url)
        upgrade_database(database_url)
        shops = register_shops(env, shipbob, args.shops)
        domains = sorted(shops)
        plan = [(domains[n % len(domains)], 9_100_000_000 + n) for n in range(args.orders)]
        reference_of = {order_id: make_reference(shops[domain], str(order_id)) for domain, order_id in plan}

        with (folder / "web.log").open("ab") as log:
            web = subprocess.Popen(procfile_command("web"), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append(web)
        wait_healthy(f"http://127.0.0.1:{WEB_PORT}")
        with (folder / "worker.log").open("ab") as log:
            argv = procfile_command("worker")
            worker = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append(worker)
        time.sleep(3)  # the pool's workers up and listening

        sent_at: dict[int, float] = {}
        refused: Counter[str] = Counter()
        sender = threading.Thread(
            target=send,
            args=(f"http://127.0.0.1:{WEB_PORT}", plan, args.rate, args.senders, sent_at, refused),
            daemon=True,
        )
        started = time.monotonic()
        sender.start()
        peak = 0.0
        cpu_before = machine_cpu(worker.pid, web.pid, redis_server.pid)
        cpu: dict[str, float] = {}
        while time.monotonic() - started < args.timeout:
            peak = max(peak, pss_mb(worker.pid))
            cpu = machine_cpu(worker.pid, web.pid, redis_server.pid)
            if len(shipbob.arrivals) >= args.orders or worker.poll() is not None:
                break
            time.sleep(0.5)
        sender.join(5)
        load = os.getloadavg()
        used = {kind: cpu[kind] - cpu_before[kind] for kind in cpu}
        report(args, shipbob, plan, reference_of, sent_at, refused, peak, load, database_url, used)
    finally:
        for process in reversed(processes):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
            if process.poll() is None:
                process.kill()
        server.shutdown()
        redis_server.terminate()
        redis_server.wait(10)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"logs and database kept in {folder}")


def report(
    args: argparse.Namespace,
    shipbob: SlowShipBob,
    plan: list[tuple[str, int]],
    reference_of: dict[int, str],
    sent_at: dict[int, float],
    refused: Counter[str],
    peak: float,
    load: tuple[float, float, float],
    database_url: str,
    cpu: dict[str, float],
) -> None:
    latencies = [
        shipbob.arrivals[reference_of[order_id]] - sent_at[order_id]
        for _, order_id in plan
        if order_id in sent_at and reference_of[order_id] in shipbob.arrivals
    ]
    arrived = len(shipbob.arrivals)
    first_sent = min(sent_at.values()) if sent_at else 0.0
    last_arrival = max(shipbob.arrivals.values()) if shipbob.arrivals else first_sent
    span = max(last_arrival - first_sent, 1e-6)
    sent_span = max(max(sent_at.values()) - first_sent, 1e-6) if sent_at else 1e-6
    rate = arrived / span
    # Twice at the provider: two ShipBob orders for one shop order (any reference). A create call
    # repeated under the same reference (its answer was late, the retry asked again) is not: ShipBob
    # refuses it as a duplicate, and it is counted apart.
    held = Counter(str(order.get("order_number")) for order in shipbob.state.orders.values())
    doubled = sum(1 for count in held.values() if count > 1)
    repeated = sum(count - 1 for count in shipbob.creates.values() if count > 1)
    print(f"database {database_url.split(':', 1)[0]}; worker: {args.processes} processes x {args.threads} threads")
    print(f"provider latency {args.latency * 1000:.0f} ms; {args.shops} shops on one ShipBob account (limiter on)")
    print(f"deliveries accepted: {len(sent_at)}/{len(plan)} at {len(sent_at) / sent_span:.1f}/s offered")
    print(f"   refused then resent: {dict(refused) or 'none'}")
    print(f"orders at the provider: {arrived}/{len(plan)}; created twice: {doubled}")
    print(f"   create calls repeated under the same reference (refused as duplicates): {repeated}")
    print(f"throughput, first delivery to last arrival: {rate:.1f} orders/s; ratio to 100/s: {rate / 100:.2f}")
    if latencies:
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        worst = max(latencies)
        print(f"webhook to provider: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms")
    print(f"peak memory of the worker tree (PSS): {peak:.0f} MB; ratio to 512 MB: {peak / 512:.2f}")
    for kind, seconds in cpu.items():
        per_order = seconds / max(arrived, 1) * 1000
        print(f"CPU of the {kind}: {seconds:.1f} s, {per_order:.1f} ms per order")
    total = sum(cpu.values()) / max(arrived, 1) * 1000
    cores = os.cpu_count() or 1
    print(
        f"CPU of the whole machine: {total:.1f} ms per order; 100 orders/s would need {total / 10:.2f} cores, "
        f"{total * 100 / (cores * 1000):.2f} x the {cores} here (bench/job_floor.py: RQ's own share)"
    )
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
