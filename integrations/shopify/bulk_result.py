"""Download a bulk operation's JSONL result as a stream: one object per line, never the whole file.

The URL comes from Shopify's own answer (``BulkOperation.url``), not from a merchant, and points
at signed Google Cloud Storage. It is still an outbound fetch to a host Relais did not choose, so
it goes through the same connection guard as merchant-given hosts (``integrations.outbound``):
https only and public addresses only in production, no redirect followed, no proxy from the
environment. Unlike a store's answer it may be gigabytes, so it is read line by line as it
arrives (``stream=True``) instead of being capped. The URL carries its signature in its query
string: it is never logged or put in an error's text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from integrations.errors import InvalidRequestError, NotFoundError, RetryableError
from integrations.outbound import GuardedAdapter, OutboundError, OutboundPolicy

CHUNK = 64 * 1024
TIMEOUT = (10.0, 60.0)  # connect, and the longest silence between two chunks
GONE = frozenset({403, 404, 410})  # a signed URL past its expiry answers 403


def read_lines(url: str, settings: Any, *, chunk_size: int = CHUNK) -> Iterator[dict[str, Any]]:
    """Each JSONL line of the file at ``url`` as an object, as the download goes. Raises
    ``NotFoundError`` when the result is gone (expired), ``RetryableError`` on a broken or failed
    download, ``InvalidRequestError`` when the address is refused or a line is not JSON."""
    policy = OutboundPolicy.from_settings(settings)
    if urlsplit(url).scheme not in ("https", "http") or (policy.https_only and not url.startswith("https://")):
        raise InvalidRequestError("the bulk operation's result address is not https: not downloaded")
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(policy)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    try:
        with session.get(url, stream=True, allow_redirects=False, timeout=TIMEOUT) as response:
            if response.status_code in GONE:
                raise NotFoundError(f"the bulk operation's result is gone (HTTP {response.status_code}: expired)")
            if response.status_code != 200:
                transient = response.status_code >= 500 or response.status_code == 429
                message = f"the bulk operation's result could not be downloaded (HTTP {response.status_code})"
                raise (RetryableError if transient else InvalidRequestError)(message)
            number = 0
            for raw in response.iter_lines(chunk_size=chunk_size, delimiter=b"\n"):
                number += 1
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw)
                except ValueError:
                    message = f"the bulk operation's result has a line that is not JSON (line {number})"
                    raise InvalidRequestError(message) from None
    except OutboundError as exc:
        error = RetryableError if exc.transient else InvalidRequestError
        raise error(f"bulk result download refused: {exc.reason}") from None
    except requests.RequestException as exc:
        raise RetryableError(f"the bulk operation's result download broke off ({type(exc).__name__})") from None
    finally:
        session.close()
