"""What a redaction removes and how it recognises it: pure functions, no database, no network.

A customer is recognised by *identifiers*: the e-mail and phone Shopify names, their orders'
ids and references; a stored delivery (or a cached value) that
carries one is replaced whole. *Needles* add the name and address Relais copied onto the
customer's orders (collected before those orders are blanked): free text (timeline reasons,
attempts, audit entries, notices, kept headers) has every needle replaced. Names and addresses
alone never make a delivery the customer's: a household shares them.

Stored deliveries are read locally: order deliveries of the shop's own platform through that
platform's *pure* normaliser (never the adapter, which may call the store for its catalogue),
everything else as JSON walked for needles and our order references, and a body that does not
parse (invalid UTF-8, truncated, over the input limits) is matched on its raw text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from marshmallow import ValidationError

from integrations import jsonbody
from integrations.errors import WebhookRejected
from integrations.model import Order as OrderModel
from integrations.shopify import orders as shopify_orders
from integrations.shopify import webhooks as shopify_webhooks
from integrations.woocommerce import orders as woo_orders
from integrations.woocommerce import webhooks as woo_webhooks

REDACTED = "[redacted]"
MIN_NEEDLE = 4  # shorter values ("NY", a house number) would blank unrelated text
_ID_IN_TEXT = re.compile(r'"(?:id|order_id)"\s*:\s*"?([0-9A-Za-z_]+)')
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")

# The platforms' pure normalisers (payload → neutral order, no I/O). WooCommerce's catalogue
# flags (virtual products) are not needed to know whose order it is, so none are looked up.
PURE_ORDER_PARSERS: dict[str, tuple[frozenset[str], Callable[[dict[str, Any]], OrderModel]]] = {
    "shopify": (shopify_webhooks.ORDER_TOPICS, shopify_orders.parse_order),
    "woocommerce": (woo_webhooks.ORDER_TOPICS - {"order.deleted"}, woo_orders.parse_order),
}


@dataclass(frozen=True)
class Redaction:
    """One redaction, as every redactor (Relais' own and registered ones) receives it.

    ``kind`` is ``customer`` (blank what names the customer) or ``shop`` (delete everything of
    the shop). ``platform_order_ids`` and ``references`` are the orders concerned (the
    customer's, or all of the shop's); ``identifiers`` the customer's e-mails and phones,
    ``needles`` those plus the name and address strings scrubbed from free text.
    """

    kind: str
    shop_id: int
    shop_domain: str
    platform: str
    platform_order_ids: frozenset[str] = frozenset()
    references: frozenset[str] = frozenset()
    identifiers: tuple[str, ...] = field(default=())
    needles: tuple[str, ...] = field(default=())

    @cached_property
    def _identifier_pattern(self) -> re.Pattern[str] | None:
        return _alternation(self.identifiers)

    @cached_property
    def _needle_pattern(self) -> re.Pattern[str] | None:
        return _alternation((*self.identifiers, *self.needles))

    @cached_property
    def _reference_pattern(self) -> re.Pattern[str] | None:
        if not self.references:
            return None
        refs = "|".join(map(re.escape, sorted(self.references, key=len, reverse=True)))
        return re.compile(rf"(?<![\w-])(?:{refs})(?:-g\d+)?(?!\w)")

    def mentions(self, value: Any) -> bool:
        """True when any text in ``value`` (str, bytes or JSON-like) names the customer or one
        of the orders concerned."""
        patterns = [p for p in (self._identifier_pattern, self._reference_pattern) if p is not None]
        return any(p.search(text) for text in _texts(value) for p in patterns)

    def scrub(self, value: Any) -> Any:
        """``value`` with every needle replaced by ``[redacted]`` (JSON-like values walked)."""
        pattern = self._needle_pattern
        if pattern is None:
            return value
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, Mapping):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value


def _alternation(words: Iterable[str]) -> re.Pattern[str] | None:
    kept = sorted({w.strip() for w in words if len(w.strip()) >= MIN_NEEDLE}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, kept)), re.IGNORECASE) if kept else None


def collect(
    email: str, phone: str, contacts: Iterable[Mapping[str, Any] | None]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(identifiers, needles)``: the e-mail and phone the request names (what the customer is
    matched by, as their orders are); then what the customer's order copies (contact, ship-to)
    hold that names a person, a place or a contact (not city, region or country)."""
    copies = [copy or {} for copy in contacts]
    fields = ("email", "phone", "name", "address1", "address2", "company")
    words = [str(c.get(k) or "") for c in copies for k in fields]
    ids = [email, phone]

    def kept(values: list[str]) -> tuple[str, ...]:
        return tuple(sorted({v.strip() for v in values if len(v.strip()) >= MIN_NEEDLE}))

    return kept(ids), kept(words)


def blank_address(address: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An address with only its country kept (what the order's history still needs)."""
    if address is None:
        return None
    return {k: (v if k in ("country_code", "country") else "") for k, v in address.items()}


def delivery_match(redaction: Redaction, source: str, topic: str, body: bytes) -> tuple[bool, str]:
    """Whether a stored delivery concerns the redaction, and the order id to keep on its stub."""
    try:
        payload = jsonbody.parse(body)
    except WebhookRejected:
        return _raw_match(redaction, body)
    own = source == redaction.platform and isinstance(payload, dict)
    order_id = str(payload.get("id") or "") if own else ""
    parser = PURE_ORDER_PARSERS.get(redaction.platform)
    if own and parser and topic in parser[0]:
        try:
            order = parser[1](payload)
        except (ValidationError, ValueError, TypeError, KeyError, AttributeError):
            order = None  # not a well-formed order: the checks below still read its id and text
        if order is not None:
            order_id = order.platform_order_id
            if redaction.mentions([order.contact.email, order.contact.phone]):
                return True, order_id
    if order_id and order_id in redaction.platform_order_ids:
        return True, order_id
    return redaction.mentions(payload), order_id


def _raw_match(redaction: Redaction, body: bytes) -> tuple[bool, str]:
    """An unparseable body: its raw text (escapes decoded) names the customer or their order."""
    text = _unescape(body.decode("utf-8", errors="replace"))
    found = _ID_IN_TEXT.search(text)
    order_id = found.group(1) if found else ""
    if redaction.mentions(text):
        return True, order_id
    ids = {m.group(1) for m in _ID_IN_TEXT.finditer(text)}
    hit = ids & redaction.platform_order_ids
    return (True, min(hit)) if hit else (False, "")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\u" in text else text


def _texts(value: Any, depth: int = 0) -> Iterable[str]:
    if isinstance(value, bytes):
        yield _unescape(value.decode("utf-8", errors="replace"))
    elif isinstance(value, str):
        yield value
    elif depth > jsonbody.MAX_DEPTH:
        return
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item, depth + 1)
