"""Fault injection for the sandbox API, per account, kept in Redis so every web process sees it.

Two kinds, set with ``POST /sandbox/api/faults``:

- ``{"fail_next": n, "status": s, "retry_after": r}``: the next n calls answer status s instead of
  running (429 with ``Retry-After``/``x-retry-after`` and ShipBob's body, 5xx, 422, 401/403).
- ``{"slow_next": n, "delay": d}``: the next n calls *do* their work, then wait d seconds before
  answering: the "create timed out on our side but happened on theirs" case that the reference
  idempotency key exists for. d is at most ``MAX_DELAY`` (a few seconds: each slow answer holds
  a server thread, so a caller must not be able to park threads for long); to see the timeout,
  run with ``RELAIS_PROVIDER_TIMEOUT`` below it.

Each is a Redis list of pending faults popped one per call (``LPOP`` is atomic, so two concurrent
calls never consume the same fault). A key present in the body replaces that list; 0 clears it.
Lists expire after an hour so a forgotten fault does not haunt a demo.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from flask import Response, jsonify

FAIL_STATUSES = frozenset({401, 403, 422, 429, 500, 502, 503})
MAX_COUNT = 100
MAX_DELAY = 5.0
TTL_SECONDS = 3600


def _key(kind: str, account: str) -> str:
    return f"relais:sandbox:{kind}:{account}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count_error(value: object) -> list[str] | None:
    return None if _is_int(value) and 0 <= value <= MAX_COUNT else [f"must be a whole number from 0 to {MAX_COUNT}"]


def validate(body: Any) -> tuple[dict[str, list[str]], dict[str, list[dict[str, Any]]]]:
    """Errors, or the fault lists to store (kind → entries). Pure."""
    if not isinstance(body, dict) or not ({"fail_next", "slow_next"} & body.keys()):
        return {"body": ["give fail_next (with status, retry_after) and/or slow_next (with delay)"]}, {}
    errors: dict[str, list[str]] = {}
    lists: dict[str, list[dict[str, Any]]] = {}
    if "fail_next" in body:
        count, status, retry_after = body["fail_next"], body.get("status", 500), body.get("retry_after", 1)
        if problem := _count_error(count):
            errors["fail_next"] = problem
        if status not in FAIL_STATUSES:
            errors["status"] = [f"must be one of {sorted(FAIL_STATUSES)}"]
        if not _is_int(retry_after) or retry_after < 0:
            errors["retry_after"] = ["must be a whole number of seconds"]
        if "fail_next" not in errors:
            lists["fail"] = [{"status": status, "retry_after": retry_after}] * count
    if "slow_next" in body:
        count, delay = body["slow_next"], body.get("delay", 1)
        if problem := _count_error(count):
            errors["slow_next"] = problem
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= MAX_DELAY:
            errors["delay"] = [f"must be a number of seconds from 0 to {MAX_DELAY:g}"]
        if "slow_next" not in errors:
            lists["slow"] = [{"delay": delay}] * count
    return errors, ({} if errors else lists)


def store(client: redis.Redis, account: str, lists: dict[str, list[dict[str, Any]]]) -> None:
    with client.pipeline(transaction=True) as pipe:
        for kind, entries in lists.items():
            key = _key(kind, account)
            pipe.delete(key)
            if entries:
                pipe.rpush(key, *[json.dumps(entry) for entry in entries])
                pipe.expire(key, TTL_SECONDS)
        pipe.execute()


def pop(client: redis.Redis, kind: str, account: str) -> dict[str, Any] | None:
    """The account's next pending fault of ``kind`` ("fail" or "slow"), consumed; None if none."""
    raw = client.lpop(_key(kind, account))
    return json.loads(raw) if raw else None


def failure_response(fault: dict[str, Any]) -> tuple[Response, int]:
    status, retry_after = int(fault["status"]), int(fault["retry_after"])
    if status == 429:
        # ShipBob's own 429 body and headers (reference/fulfilment.md A.1, "Rate limit").
        response = jsonify(statusCode=429, message=f"Rate limit is exceeded. Try again in {retry_after} seconds.")
        response.headers["Retry-After"] = str(retry_after)
        response.headers["x-retry-after"] = str(retry_after)
        return response, 429
    if status == 422:
        return jsonify(errors={"fault": ["injected validation fault"]}), 422
    if status in (401, 403):
        return jsonify(error="unauthorized" if status == 401 else "forbidden", message="injected fault"), status
    return jsonify(error="internal_error", message="injected fault"), status
