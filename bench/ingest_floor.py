"""The floor app ``bench/ingest.py`` measures beside Relais: the least a durable webhook receiver
can do per delivery, with none of Relais' own code, under the same gunicorn settings.

Per delivery: read the body, check its Shopify HMAC (constant-time), insert it in one
autocommitted statement through the raw driver (psycopg, one connection per thread, no ORM, no
pool), push its id on a Redis list in one round trip (no RQ job), answer 200. No shop lookup, no
JSON parsing, no duplicate key, no limits, no logging. A real receiver does more; none can do
less and still acknowledge only what is stored and queued. Its rate over the bare app's is the
best ratio any receiver with a durable insert and an enqueue reaches on this machine.

``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` as for Relais; the table ``floor_inbox`` is made
by ``bench/ingest.py`` before the run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading

import psycopg
import redis
from flask import Flask, jsonify, request

SECRET = os.environ["SHOPIFY_API_SECRET"].encode()
DATABASE_URL = os.environ["DATABASE_URL"].replace("+psycopg", "")
queue = redis.Redis.from_url(os.environ["REDIS_URL"])
local = threading.local()
app = Flask(__name__)


def _connection() -> psycopg.Connection:
    if getattr(local, "conn", None) is None:
        local.conn = psycopg.connect(DATABASE_URL, autocommit=True)
    return local.conn


@app.post("/webhooks/shopify")
def shopify():  # type: ignore[no-untyped-def]
    body = request.get_data()
    given = request.headers.get("X-Shopify-Hmac-Sha256", "")
    digest = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(digest, given):
        return jsonify(error="signature"), 401
    row = _connection().execute("INSERT INTO floor_inbox (body) VALUES (%s) RETURNING id", (body,)).fetchone()
    queue.lpush("floor:queue", row[0])  # type: ignore[index]
    return jsonify(status="accepted"), 200


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")
