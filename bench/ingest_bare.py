"""The bare Flask app ``bench/ingest.py`` measures Relais against: it reads the body and answers
200, under the same gunicorn settings (``config/gunicorn.py``), so the ratio shows what Relais'
own work costs over the framework and the server."""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/shopify")
def shopify():  # type: ignore[no-untyped-def]
    request.get_data()
    return jsonify(status="accepted"), 200


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")
