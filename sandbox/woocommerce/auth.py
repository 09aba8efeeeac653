"""Authentication of the fake WooCommerce store, as ``class-wc-rest-authentication.php`` does it.

Over TLS (``is_ssl()``): ``?consumer_key=&consumer_secret=`` first, else Basic from
``PHP_AUTH_USER``/``PHP_AUTH_PW`` (gone when the host strips ``Authorization``); an unknown key
leaves the request anonymous, a wrong secret is refused. Without TLS: OAuth 1.0a only, signed
over the ``http://`` URL, timestamps within 15 minutes, each nonce once. Then the key's
read/write permission per method.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from sandbox.woocommerce.state import Key

if TYPE_CHECKING:
    from sandbox.woocommerce.store import FakeWooCommerce

Outcome = tuple[Key | None, str, Response | None]  # key (None: anonymous), mode, refusal


def _error(code: str, message: str, status: int = 401, headers: dict[str, str] | None = None) -> Response:
    from sandbox.woocommerce.store import wc_error

    return wc_error(code, message, status, headers)


def authenticate(fake: FakeWooCommerce, request: Request, method: str) -> Outcome:
    if fake.is_ssl:
        ck, cs, mode = request.args.get("consumer_key"), request.args.get("consumer_secret"), "query"
        if not (ck and cs):
            ck = cs = None
            mode = "basic"
            auth = None if fake.strip_authorization else request.authorization
            if auth and auth.type == "basic":
                ck, cs = auth.username, auth.password
        if not ck:
            return None, "anonymous", None
        key = find_key(fake, ck)
        if key is None:
            return None, "anonymous", None  # an unknown key sets no error: the request goes on anonymous
        if not hmac.compare_digest(key.consumer_secret, cs or ""):
            return (
                None,
                mode,
                _error(
                    "woocommerce_rest_authentication_error",
                    "Consumer secret is invalid.",
                    401,
                    {
                        "WWW-Authenticate": 'Basic realm="WooCommerce API. Use a consumer key in the username field '
                        'and a consumer secret in the password field."'
                    },
                ),
            )
        return permission(key, method, mode)
    params = dict(request.args)
    if "oauth_consumer_key" not in params:
        return None, "anonymous", None
    missing = [
        p
        for p in (
            "oauth_consumer_key",
            "oauth_timestamp",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
        )
        if not params.get(p)
    ]
    if missing:
        return (
            None,
            "oauth",
            _error(
                "woocommerce_rest_authentication_missing_parameter",
                f"Missing OAuth parameter(s) {', '.join(missing)}",
                401,
            ),
        )
    key = find_key(fake, params["oauth_consumer_key"])
    if key is None:
        return None, "oauth", _error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
    algo = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}.get(params["oauth_signature_method"])
    if algo is None:
        return (
            None,
            "oauth",
            _error("woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.", 401),
        )
    url = "http://" + fake.url.split("://", 1)[1] + request.path  # is_ssl() is false here
    given = params.pop("oauth_signature")
    pairs = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, v in params.items())
    joined = "%26".join(quote(f"{k}={v}", safe="~") for k, v in pairs)
    base = "&".join([request.method.upper(), quote(url, safe="~"), joined])
    expected = base64.b64encode(hmac.new(f"{key.consumer_secret}&".encode(), base.encode(), algo).digest()).decode()
    if not hmac.compare_digest(expected, given):
        return (
            None,
            "oauth",
            _error(
                "woocommerce_rest_authentication_error",
                "Invalid signature - provided signature does not match.",
                401,
            ),
        )
    if abs(time.time() - int(params["oauth_timestamp"])) > 15 * 60:
        return None, "oauth", _error("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
    with fake.lock:
        if params["oauth_nonce"] in key.nonces:
            return (
                None,
                "oauth",
                _error("woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.", 401),
            )
        key.nonces.add(params["oauth_nonce"])
    return permission(key, method, "oauth")


def find_key(fake: FakeWooCommerce, consumer_key: str) -> Key | None:
    with fake.lock:
        return next((k for k in fake.state.keys if hmac.compare_digest(k.consumer_key, consumer_key)), None)


def permission(key: Key, method: str, mode: str) -> Outcome:
    need = "read" if method in ("GET", "HEAD") else "write"
    if method != "OPTIONS" and need not in key.permissions:
        return (
            None,
            mode,
            _error(
                "woocommerce_rest_authentication_error",
                f"The API key provided does not have {need} permissions.",
                401,
            ),
        )
    return key, mode, None
