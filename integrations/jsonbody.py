"""Untrusted JSON bodies, bounded before they are parsed.

Every receiver reads webhook bodies through here, before anything else parses them (the
signature lookup of a provider reads the body's reference before it is verified). Python's own
parser recurses once per nesting level (100,000 ``[`` raise ``RecursionError``: a 500),
converts integer literals in quadratic time up to 4,300 digits, accepts ``NaN``, and on bytes
decodes with ``surrogatepass`` (CESU-8 surrogates, invalid UTF-8, get stored and fail later in
the worker or the database). So the text is checked first, in one linear pass with no recursion:
strict UTF-8, at most ``MAX_DEPTH`` open brackets outside strings, integer runs of at most
``MAX_DIGITS`` digits (Shopify's 64-bit ids have 19), and no ``\\u`` escape that decodes to a
lone surrogate. Only then is it parsed, from ``str``.

Any failure is ``WebhookRejected(<plain reason>, 400)``: the receiver answers it as JSON and
stores nothing. Pure functions, no Flask: ``jobs.privacy`` reads stored bodies the same way.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from integrations.errors import WebhookRejected

MAX_DEPTH = 64
MAX_DIGITS = 40

# A JSON string (unrolled loop: linear, no backtracking). Escapes are only meaningful inside
# strings, so once strings are blanked every bracket and digit left is structure.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BRACKETS = re.compile(r"[\[\]{}]")
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_DIGITS + 1},}}")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check(body: bytes) -> str:
    """The body as text once it is safe to parse; raises ``WebhookRejected`` (400) otherwise.

    Also used on bodies that are not JSON (WooCommerce's form-encoded ping): nothing here
    requires JSON, only that a later ``json.loads`` of it stays bounded.
    """
    try:
        text = body.decode("utf-8")  # strict: encoded surrogates (CESU-8) and overlongs refused
    except UnicodeDecodeError:
        raise WebhookRejected("body is not valid UTF-8", 400) from None
    if _SURROGATE_ESCAPE.search(text) and not all(
        _encodable(m.group()) for m in _STRING.finditer(text) if "\\u" in m.group()
    ):
        raise WebhookRejected("body has a \\u escape of a lone surrogate", 400)
    structure = _STRING.sub('""', text)
    if _LONG_NUMBER.search(structure):
        raise WebhookRejected(f"body has a number longer than {MAX_DIGITS} digits", 400)
    if max(accumulate(_STEP[b] for b in _BRACKETS.findall(structure)), default=0) > MAX_DEPTH:
        raise WebhookRejected(f"body nests deeper than {MAX_DEPTH} levels", 400)
    return text


def _encodable(token: str) -> bool:
    """A string token whose escapes decode to text UTF-8 can carry (no lone surrogate)."""
    try:
        json.loads(token).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except ValueError:  # a malformed escape: the parse that follows refuses it as not JSON
        return True
    return True


def parse(body: bytes) -> Any:
    """``check`` then parse (``NaN``/``Infinity`` refused); raises ``WebhookRejected`` (400)."""
    return _loads(check(body))


def parse_object(body: bytes) -> dict[str, Any]:
    """``parse``, requiring a JSON object (every webhook we accept is one)."""
    return object_of(check(body))


def object_of(text: str) -> dict[str, Any]:
    """Text ``check`` has passed, parsed, required to be a JSON object (a receiver that checked
    the body on reading it does not pay for the check twice)."""
    payload = _loads(text)
    if not isinstance(payload, dict):
        raise WebhookRejected("body is not a JSON object", 400)
    return payload


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_constant)
    except ValueError:
        raise WebhookRejected("body is not JSON", 400) from None
