"""The bounded body check at its edges: the fast parse-first path and the text scan for bodies
that are not JSON must refuse and accept exactly the same things."""

from __future__ import annotations

import pytest

from integrations import jsonbody
from integrations.errors import WebhookRejected

DIGITS = jsonbody.MAX_DIGITS
DEPTH = jsonbody.MAX_DEPTH

ACCEPTED = {
    "an integer of the longest length": b'{"id": ' + b"9" * DIGITS + b"}",
    "a negative one": b'{"id": -' + b"9" * DIGITS + b"}",
    "arrays nested to the limit": b"[" * DEPTH + b"]" * DEPTH,
    "brackets inside a string": b'{"note": "' + b"[{" * 200 + b'"}',
    "an escaped surrogate pair": b'{"name": "\\ud83d\\ude00"}',
}
REFUSED = {
    "an integer one digit too long": (b'{"id": ' + b"9" * (DIGITS + 1) + b"}", "number longer"),
    "a negative one too long": (b'{"id": -' + b"9" * (DIGITS + 1) + b"}", "number longer"),
    "a float with a long mantissa": (b'{"x": 1.' + b"5" * (DIGITS + 1) + b"}", "number longer"),
    "a float with a long exponent": (b'{"x": 1e' + b"9" * (DIGITS + 1) + b"}", "number longer"),
    "objects and arrays one level too deep": (b'{"a":' + b'[{"b":' * 32 + b"1" + b"}]" * 32 + b"}", "nests deeper"),
    "nesting past the interpreter's recursion limit": (b"[" * 5000 + b"]" * 5000, "nests deeper"),
    "a text that is not JSON, nested too deep": (b"x=" + b"[" * (DEPTH + 1), "nests deeper"),
    "a text that is not JSON, with a long number": (b"x=" + b"9" * (DIGITS + 1), "number longer"),
    "an escaped lone surrogate": (b'{"a": "\\udc00"}', "lone surrogate"),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_a_body_within_every_limit_is_accepted_and_parsed_once(case: str) -> None:
    body = ACCEPTED[case]
    checked = jsonbody.checked(body)
    assert checked.text == body.decode()
    assert checked.value == jsonbody.parse(body)


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_body_past_a_limit_is_refused_with_the_limit_named(case: str) -> None:
    body, reason = REFUSED[case]
    with pytest.raises(WebhookRejected, match=reason) as refused:
        jsonbody.check(body)
    assert refused.value.status == 400


def test_a_body_that_is_not_json_passes_the_check_but_not_the_parse() -> None:
    for body in (b"webhook_id=12", b'{"amount": NaN}', b"{"):
        assert jsonbody.checked(body).value is jsonbody.NOT_JSON
        with pytest.raises(WebhookRejected, match="not JSON"):
            jsonbody.parse(body)


def test_json_that_is_not_an_object_is_refused_where_an_object_is_required() -> None:
    assert jsonbody.parse(b"[1, 2]") == [1, 2]
    with pytest.raises(WebhookRejected, match="not a JSON object"):
        jsonbody.parse_object(b"[1, 2]")
