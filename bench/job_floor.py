"""The floor under ``bench/pipeline.py``: what two RQ jobs per order cost with nothing in them.

Issue 14 asks for 100 orders/s on this machine (2 cores). Every order is two jobs (the event job,
then the push job it enqueues), and each job goes through RQ's own bookkeeping (dequeue, job
fetch, execution and started registries, heartbeat, result, success pipeline) whatever it does.
This bench runs that shape with empty jobs through the worker Relais uses (``jobs.threaded``,
16 threads, burst mode): ``first`` enqueues ``second`` (RQ's own ``Queue.enqueue``), and
``second`` optionally makes one HTTP POST (``requests``, a kept-alive session, as the provider
client does) to a local server answering at once, in another process so that its CPU is not
counted here.

Printed: CPU per order (two jobs) in the worker process and in redis-server, and what that floor
alone allows on the machine's cores, against the 100 orders/s goal. No database, no JSON body,
no provider logic: the real path costs this plus everything ``bench/pipeline_counts.py`` counts.

    .venv/bin/python bench/job_floor.py [--orders 3000] [--threads 16] [--no-http]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
from rq import Queue, get_current_job  # noqa: E402

from bench.pipeline import cpu_seconds, start_redis  # noqa: E402
from jobs.threaded import ThreadedSimpleWorker  # noqa: E402

REDIS_PORT, HTTP_PORT = 18261, 18262
_http = requests.Session()


def first(order: int, http: bool) -> None:
    """The event job's shape: enqueue the follow-up, under its own id."""
    job = get_current_job()
    assert job is not None
    Queue("orders", connection=job.connection).enqueue("bench.job_floor.second", order, http, job_id=f"second-{order}")


def second(order: int, http: bool) -> None:
    """The push job's shape: one call to the provider when asked."""
    if http:
        _http.post(f"http://127.0.0.1:{HTTP_PORT}/order", json={"reference_id": str(order)}, timeout=10).close()


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def _serve() -> None:
    ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), _Answer).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--no-http", action="store_true", help="the second job makes no HTTP call")
    args = parser.parse_args()
    http = not args.no_http

    folder = Path(tempfile.mkdtemp(prefix="relais-floor-"))
    server = start_redis(folder, REDIS_PORT)
    answering = multiprocessing.get_context("fork").Process(target=_serve, daemon=True)
    answering.start()
    try:
        connection = redis.Redis(port=REDIS_PORT)
        queue = Queue("events", connection=connection)
        for order in range(args.orders):
            queue.enqueue("bench.job_floor.first", order, http, job_id=f"first-{order}")
        queues = [queue, Queue("orders", connection=connection)]
        redis_before, cpu_before, started = cpu_seconds(server.pid), time.process_time(), time.monotonic()
        ThreadedSimpleWorker(queues, connection=connection, threads=args.threads).work(
            burst=True, logging_level="WARNING"
        )
        wall = time.monotonic() - started
        worker_ms = (time.process_time() - cpu_before) / args.orders * 1000
        redis_ms = (cpu_seconds(server.pid) - redis_before) / args.orders * 1000
        done = Queue("orders", connection=connection).finished_job_registry.count
        cores = os.cpu_count() or 1
        floor = worker_ms + redis_ms
        print(f"{args.orders} orders = {2 * args.orders} empty jobs, {args.threads} threads, HTTP call: {http}")
        print(f"  second jobs finished: {done}/{args.orders}; wall {wall:.1f} s ({args.orders / wall:.0f} orders/s)")
        print(f"  CPU per order: worker {worker_ms:.2f} ms, redis-server {redis_ms:.2f} ms; floor {floor:.2f} ms")
        print(
            f"  on {cores} cores this floor alone allows {cores * 1000 / floor:.0f} orders/s "
            f"({floor * 100 / (cores * 1000):.2f} of the machine at 100 orders/s)"
        )
    finally:
        answering.kill()
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
