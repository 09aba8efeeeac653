"""An open-loop load generator: requests leave on a fixed schedule, whatever the server does.

``wrk`` is closed-loop: a connection sends its next request only once the last one answered, so
a server that stalls is sent less and its stall is under-counted (coordinated omission). Here
request ``i`` is due at ``start + i / rate``; its latency is measured from that due time, so time
spent waiting for a free connection counts. ``wrk2`` does this but is not packaged; this is
asyncio on raw sockets (HTTP/1.1 keep-alive, ``Content-Length`` bodies), enough for a few
thousand requests a second from one core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)  # seconds, from due time to full answer
    errors: int = 0  # non-2xx answers and failed connections
    sent: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _run(
    host: str, port: int, make_request: Callable[[int], bytes], rate: float, duration: float, connections: int
) -> Outcome:
    loop = asyncio.get_running_loop()
    total = int(rate * duration)
    outcome = Outcome()
    start = loop.time() + 0.5
    slots = iter(range(total))

    async def connection() -> None:
        reader = writer = None
        for i in slots:
            due = start + i / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            payload = make_request(i)
            outcome.sent += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(payload)
                status, close = await _read_response(reader)  # type: ignore[arg-type]
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                outcome.errors += 1
                writer = None
                continue
            outcome.latencies.append(loop.time() - due)
            if not 200 <= status < 300:
                outcome.errors += 1
            if close:  # gunicorn recycling a worker (max_requests) says so on its last answer
                writer.close()
                writer = None

    await asyncio.gather(*(connection() for _ in range(connections)))
    return outcome


def run(
    host: str, port: int, make_request: Callable[[int], bytes], rate: float, duration: float, connections: int = 64
) -> Outcome:
    """Send ``rate * duration`` requests (``make_request(i)`` gives request ``i``'s bytes) on a
    fixed schedule over up to ``connections`` keep-alive connections."""
    return asyncio.run(_run(host, port, make_request, rate, duration, connections))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
