"""gunicorn settings for the Procfile's ``web`` line (Heroku sets PORT and WEB_CONCURRENCY).

Webhook requests only verify, insert and enqueue, so a few sync-threaded workers answer far
inside Shopify's 5 s limit; threads overlap the database commit and the Redis round trip.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Never log query strings of the OAuth callback with their codes; the path is enough.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
max_requests = 2000
max_requests_jitter = 200
