"""How a request proves itself to a store: Basic, query-string keys, or OAuth 1.0a.

WooCommerce reads keys only in certain ways [class-wc-rest-authentication.php]:
- over HTTPS (``is_ssl()`` true on the WordPress side): ``?consumer_key=&consumer_secret=``
  first, else Basic auth from ``PHP_AUTH_USER``/``PHP_AUTH_PW``. Apache CGI/FastCGI and some
  proxies drop the ``Authorization`` header (woocommerce#17271), so Basic silently arrives
  unauthenticated and the answer is ``401 woocommerce_rest_cannot_view``: query-string keys work;
- over plain HTTP, or when TLS ends at a proxy and WordPress believes it is on HTTP: only
  OAuth 1.0a "one-legged", signed over the URL WordPress thinks it serves (``http://``).

So the ladder for an HTTPS store is basic → query → oauth (with the ``http`` scheme), and an
HTTP store only ever uses oauth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

BASIC = "basic"
QUERY = "query"
OAUTH = "oauth"


def ladder(store_url: str) -> tuple[str, ...]:
    """The auth modes to try, in order, for a store at ``store_url``."""
    return (BASIC, QUERY, OAUTH) if store_url.startswith("https://") else (OAUTH,)


def _enc(value: str) -> str:
    # PHP rawurlencode: RFC 3986, only A-Z a-z 0-9 - _ . ~ left as they are.
    return quote(value, safe="~")


def oauth_base_string(method: str, url: str, params: Mapping[str, str]) -> str:
    """WooCommerce's base string: METHOD & enc(url) & enc(sorted "k=v" pairs joined by "&")."""
    pairs = sorted((_enc(str(k)), _enc(str(v))) for k, v in params.items() if k != "oauth_signature")
    joined = "%26".join(_enc(f"{k}={v}") for k, v in pairs)
    return f"{method.upper()}&{_enc(url)}&{joined}"


def oauth_signature(method: str, url: str, params: Mapping[str, str], consumer_secret: str) -> str:
    """base64(HMAC-SHA256(consumer_secret + "&", base string)); no token secret (one-legged)."""
    key = f"{consumer_secret}&".encode()
    digest = hmac.new(key, oauth_base_string(method, url, params).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def oauth_params(
    method: str,
    url: str,
    params: Mapping[str, str],
    consumer_key: str,
    consumer_secret: str,
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The query parameters of a signed request: ``params`` plus the five ``oauth_*`` ones.

    ``url`` is the address WordPress believes it serves; behind a TLS-terminating proxy that
    is the ``http://`` spelling of the store's URL (``is_ssl()`` is false there).
    """
    signed = {
        **{k: str(v) for k, v in params.items()},
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": str(timestamp if timestamp is not None else int(time.time())),
    }
    signed["oauth_signature"] = oauth_signature(method, url, signed, consumer_secret)
    return signed


def as_http(url: str) -> str:
    """``url`` with the ``http`` scheme: what WordPress signs against when it sees no TLS."""
    parts = urlsplit(url)
    return urlunsplit(("http", parts.netloc, parts.path, "", ""))
