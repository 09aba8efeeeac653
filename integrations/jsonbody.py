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

That pass costs more than the parse itself on an ordinary 8 KB order (bench/ingest.py), so a body
is first parsed by the C parser with the limits enforced as it goes, which keeps it bounded too:
numbers reach ``parse_int``/``parse_float`` as text, so a long one is refused before any
conversion; nesting past the interpreter's recursion limit (far beyond ``MAX_DEPTH``) raises
``RecursionError`` at once; and the parsed value's depth is then measured without recursion.
Only text that is not JSON (a form-encoded ping) takes the linear pass, which alone says whether
a later parse of it would stay bounded. The escape check runs first either way.

Any failure is ``WebhookRejected(<plain reason>, 400)``: the receiver answers it as JSON and
stores nothing. Pure functions, no Flask: ``jobs.privacy`` reads stored bodies the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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


NOT_JSON = object()  # ``Checked.value`` of a body that is not JSON


class _LongNumber(ValueError):
    pass


@dataclass(frozen=True)
class Checked:
    """A body that passed ``checked``: its text, and its parsed value (``NOT_JSON`` if none)."""

    text: str
    value: Any


def check(body: bytes) -> str:
    """The body as text once it is safe to parse; raises ``WebhookRejected`` (400) otherwise.

    Also used on bodies that are not JSON (WooCommerce's form-encoded ping): nothing here
    requires JSON, only that a later ``json.loads`` of it stays bounded.
    """
    return checked(body).text


def checked(body: bytes) -> Checked:
    """``check``, keeping the value the check parsed, so the receiver does not parse it again."""
    try:
        text = body.decode("utf-8")  # strict: encoded surrogates (CESU-8) and overlongs refused
    except UnicodeDecodeError:
        raise WebhookRejected("body is not valid UTF-8", 400) from None
    if _SURROGATE_ESCAPE.search(text) and not all(
        _encodable(m.group()) for m in _STRING.finditer(text) if "\\u" in m.group()
    ):
        raise WebhookRejected("body has a \\u escape of a lone surrogate", 400)
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _LongNumber:
        raise WebhookRejected(f"body has a number longer than {MAX_DIGITS} digits", 400) from None
    except RecursionError:
        raise WebhookRejected(f"body nests deeper than {MAX_DEPTH} levels", 400) from None
    except ValueError:
        _scan(text)  # not JSON: only the linear pass can bound a later parse of it
        return Checked(text, NOT_JSON)
    # Depth cannot pass the count of opening brackets (those inside strings included): an
    # ordinary order has fewer than MAX_DEPTH in all, and needs no walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise WebhookRejected(f"body nests deeper than {MAX_DEPTH} levels", 400)
    return Checked(text, value)


def _int(literal: str) -> int:
    if len(literal) > MAX_DIGITS and len(literal.lstrip("-")) > MAX_DIGITS:
        raise _LongNumber(literal[:20])
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_DIGITS and _LONG_NUMBER.search(literal):
        raise _LongNumber(literal[:20])
    return float(literal)


def _depth(value: Any) -> int:
    """How deeply ``value``'s arrays and objects nest (0 for a scalar), without recursion; stops
    counting once past ``MAX_DEPTH``."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest, stack = 1, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                if depth + 1 > deepest:
                    deepest = depth + 1
                    if deepest > MAX_DEPTH:
                        return deepest
                stack.append((child, depth + 1))
    return deepest


def _scan(text: str) -> None:
    """The linear pass over text that is not JSON: digit runs and brackets outside strings."""
    structure = _STRING.sub('""', text)
    if _LONG_NUMBER.search(structure):
        raise WebhookRejected(f"body has a number longer than {MAX_DIGITS} digits", 400)
    if max(accumulate(_STEP[b] for b in _BRACKETS.findall(structure)), default=0) > MAX_DEPTH:
        raise WebhookRejected(f"body nests deeper than {MAX_DEPTH} levels", 400)


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
    value = checked(body).value
    if value is NOT_JSON:
        raise WebhookRejected("body is not JSON", 400)
    return value


def parse_object(body: bytes) -> dict[str, Any]:
    """``parse``, requiring a JSON object (every webhook we accept is one)."""
    return object_of(checked(body))


def object_of(checked_body: Checked) -> dict[str, Any]:
    """A body ``checked`` has passed, required to be a JSON object (a receiver that checked the
    body on reading it does not pay for the check, nor the parse, twice)."""
    if checked_body.value is NOT_JSON:
        raise WebhookRejected("body is not JSON", 400)
    if not isinstance(checked_body.value, dict):
        raise WebhookRejected("body is not a JSON object", 400)
    return checked_body.value
