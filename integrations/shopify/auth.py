"""Who is calling, as Shopify proves it: the query HMAC of install links and OAuth callbacks, the
shop hostname rule, and the App Bridge session token of the embedded page. Pure: no I/O.

The query HMAC is hex HMAC-SHA256 (app secret) over the query without ``hmac``/``signature``,
keys sorted, in the canonical form of Shopify's JS library (``ProcessedQuery``): a
``URLSearchParams`` serialisation (``application/x-www-form-urlencoded``) with ``+`` turned into
``%20`` ("Shopify signs with %20, not +"). Shopify's Python library escapes differently; for the
values a callback carries (hex code, ``*.myshopify.com``, digits) both agree, and the JS form is
the one behind Shopify's current templates (reference/shopify.md §3.2).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

# Shopify's JS library allows this clock skew on an OAuth callback's ``timestamp``.
TIMESTAMP_TOLERANCE = 90  # seconds
# App Bridge mints tokens with a slightly future ``nbf``; Shopify's libraries allow 10 s.
SESSION_TOKEN_LEEWAY = 10  # seconds

_SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
# The WHATWG urlencoded serializer leaves only these bytes as they are.
_FORM_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")


class SessionTokenError(Exception):
    """A session token was refused; the message says why (never the token itself)."""


def valid_shop(value: str | None) -> str | None:
    """The shop's ``*.myshopify.com`` hostname, lower-cased, or None when it is anything else
    (``evil.com``, a path, a port, a scheme-less lookalike such as ``x.myshopify.com.evil.com``)."""
    if not value:
        return None
    shop = value.strip().lower()
    return shop if _SHOP.match(shop) else None


def _form_encode(text: str) -> str:
    out = []
    for byte in text.encode():
        if byte in _FORM_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("%20")  # URLSearchParams writes "+", which the JS library then turns into %20
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def canonical_query(params: Mapping[str, str | Sequence[str]]) -> str:
    """The string Shopify signs: every parameter but ``hmac`` and ``signature``, sorted by key, a
    repeated key's values joined by commas (as the JS library normalises ``URLSearchParams``)."""
    pairs = []
    for key in sorted(k for k in params if k not in ("hmac", "signature")):
        value = params[key]
        text = value if isinstance(value, str) else ",".join(value)
        pairs.append(f"{_form_encode(key)}={_form_encode(text)}")
    return "&".join(pairs)


def query_hmac(secret: str, params: Mapping[str, str | Sequence[str]]) -> str:
    """Lowercase hex HMAC-SHA256 of the canonical query."""
    return hmac.new(secret.encode(), canonical_query(params).encode(), hashlib.sha256).hexdigest()


def verify_query(secrets: Iterable[str], params: Mapping[str, str | Sequence[str]]) -> bool:
    """True when ``params['hmac']`` signs the query under the current or the previous secret."""
    given = params.get("hmac")
    if not isinstance(given, str):  # a multi-valued query (``to_dict(flat=False)``) gives a list
        given = given[0] if given and len(given) == 1 else ""
    if not given:
        return False
    ok = False
    for secret in secrets:
        if secret:
            ok |= hmac.compare_digest(query_hmac(secret, params).encode(), given.strip().lower().encode())
    return ok


def timestamp_fresh(value: str | None, now: float, tolerance: int = TIMESTAMP_TOLERANCE) -> bool:
    """A callback's ``timestamp`` is within ``tolerance`` seconds of ``now`` (either way)."""
    try:
        return abs(now - int(value or "")) <= tolerance
    except ValueError:
        return False


@dataclass(frozen=True)
class SessionToken:
    """A verified App Bridge session token: the shop it is for and the admin session it names."""

    shop: str
    user: str
    session_id: str
    expires_at: int
    claims: Mapping[str, Any]


def verify_session_token(token: str, api_key: str, secrets: Iterable[str]) -> SessionToken:
    """Verify an App Bridge ID token: HS256 only (``alg: none`` and others refused), signed with the
    current or previous app secret, ``aud`` = our client id, ``exp``/``nbf`` with 10 s leeway,
    ``iss`` (``https://{shop}/admin``) and ``dest`` (``https://{shop}``) naming the same valid shop.
    Raises ``SessionTokenError``."""
    if not token or not api_key:
        raise SessionTokenError("no session token" if not token else "the app has no client id configured")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SessionTokenError(f"malformed session token: {type(exc).__name__}") from None
    if header.get("alg") != "HS256":
        raise SessionTokenError(f"session token algorithm {header.get('alg')!r} refused (HS256 only)")
    claims: dict[str, Any] | None = None
    for secret in (s for s in secrets if s):
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=api_key,
                leeway=SESSION_TOKEN_LEEWAY,
                options={"require": ["exp", "nbf", "iss", "dest", "aud"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # maybe signed with the other (previous or current) secret
        except jwt.PyJWTError as exc:
            raise SessionTokenError(f"session token refused: {type(exc).__name__}: {exc}") from None
    if claims is None:
        raise SessionTokenError("session token signature does not match the app secret")
    iss, dest = urlsplit(str(claims["iss"])), urlsplit(str(claims["dest"]))
    shop = valid_shop(dest.hostname)
    if dest.scheme != "https" or iss.scheme != "https" or shop is None or iss.netloc != dest.netloc:
        raise SessionTokenError("session token iss and dest do not name the same shop")
    return SessionToken(
        shop=shop,
        user=str(claims.get("sub", "")),
        session_id=str(claims.get("sid", "")),
        expires_at=int(claims["exp"]),
        claims=claims,
    )
