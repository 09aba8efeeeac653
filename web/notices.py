"""The merchant's words for what Relais stored in English: timeline reasons, notices, action results.

Reasons are stored in English, with the ids the operator needs (provider references such as
``1-9000000489182927913``, Shopify GIDs such as ``gid://shopify/Fulfillment/3``); the database keeps
them as they are. At display time each known phrase is matched, its dynamic parts (an order name,
a tracking number, a provider) kept, and it is shown in the merchant's language without the
internal ids. A phrase nobody taught us is shown as stored, minus those ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import gettext


def N_(text: str) -> str:  # gettext's conventional no-op marker (pybabel extract -k N_)
    """Mark a phrase for the catalogue; it is translated when shown."""
    return text


# Internal ids the merchant must never see: Shopify GIDs (with the parentheses around them) and
# our provider references "<shop id>-<platform order id>".
_GID_IN_PARENS = re.compile(r"\s*\(gid://[^)\s]*\)")
_GID = re.compile(r"gid://[A-Za-z]+/(?P<kind>[A-Za-z]+)/(?P<id>[0-9A-Za-z]+)")
PROVIDER_REFERENCE = re.compile(r"\b\d+-\d{6,}\b")

# (pattern over the stored English text, the merchant's phrase). Named groups are kept as they
# are, except ``actor`` and ``inner``, which are phrases themselves and are translated too.
_RULES: list[tuple[str, str]] = [
    (r"received", N_("received")),
    (r"paid", N_("paid")),
    (r"created \(shop pushes on creation\)", N_("created (the shop sends orders when they are created)")),
    (r"waiting for payment", N_("waiting for payment")),
    (r"released; waiting for payment", N_("released; waiting for payment")),
    (r"no line needs shipping", N_("no line needs shipping")),
    (r"tagged (?P<tags>.+) \(a hold tag\)", N_("tagged %(tags)s (a hold tag)")),
    (r"shipping address is incomplete: no (?P<fields>.+)", N_("the shipping address is incomplete: no %(fields)s")),
    (
        r"waiting for a provider: choose yours under Fulfilment provider; it is sent once saved and tested",
        N_("waiting for a provider: choose yours under Fulfilment provider; it is sent once saved and tested"),
    ),
    (r"waiting for a provider", N_("waiting for a provider")),
    (
        r"cannot release: waiting for a provider \(save and test one first\)",
        N_("cannot release: no provider yet (save and test one first)"),
    ),
    (
        r"cannot release: the shipping address lacks (?P<fields>.+)",
        N_("cannot release: the shipping address lacks %(fields)s"),
    ),
    (r"a provider is saved and tested: sending", N_("a provider is saved and tested: sending")),
    (
        r"(?P<provider>\S+) is set \((?P<actor>.+)\): deciding again",
        N_("%(provider)s is set (%(actor)s): deciding again"),
    ),
    (r"sending to (?P<provider>\S+) as \S+", N_("sending to %(provider)s")),
    (r"accepted by (?P<provider>\S+) as order (?P<order>\S+)", N_("accepted by %(provider)s (its order %(order)s)")),
    (r"parcel \S+ shipped by the provider: (?P<tracking>.+)", N_("parcel shipped by the provider: %(tracking)s")),
    (r"tracking (?P<number>\S+) written to the shop.*", N_("tracking %(number)s written to the shop")),
    (r"tracking (?P<number>\S+) corrected on the shop.*", N_("tracking %(number)s corrected on the shop")),
    (r"tracking (?P<number>\S+) found already on the shop.*", N_("tracking %(number)s was already on the shop")),
    (r"tracking of parcel \S+ written to the shop", N_("tracking written to the shop")),
    (r"provider reports parcel \S+ delivered", N_("the provider reports the parcel delivered")),
    (r"provider reports parcel \S+ (?P<status>\w+)", N_("the provider reports the parcel %(status)s")),
    (
        r"carrier (?P<carrier>.+) guessed from the format of (?P<number>\S+)",
        N_("carrier %(carrier)s guessed from the format of %(number)s"),
    ),
    (r"cancel retried by (?P<actor>.+)", N_("cancel retried by %(actor)s")),
    (r"retried by (?P<actor>.+)", N_("retried by %(actor)s")),
    (r"hold released by the merchant \((?P<actor>.+)\)", N_("hold released by %(actor)s")),
    (r"hold released by the merchant", N_("hold released by the merchant")),
    # The fraud hold (jobs.fraud) and the stock location (jobs.locations).
    (
        r"high fraud risk \(assessed by the shop\): (?P<facts>.+)",
        N_("high fraud risk (assessed by the shop): %(facts)s"),
    ),
    (r"high fraud risk \(assessed by the shop\)", N_("high fraud risk (assessed by the shop)")),
    (r"fraud risk could not be checked: (?P<why>.+)", N_("fraud risk could not be checked: %(why)s")),
    (
        r"waiting for the fraud risk assessment \(at most (?P<n>\d+) min before it is sent without one\)",
        N_("waiting for the fraud risk assessment (at most %(n)s min before it is sent without one)"),
    ),
    (r"fraud risk assessed: (?P<level>\w+)", N_("fraud risk assessed: %(level)s")),
    (
        r"no fraud risk assessment after (?P<n>\d+) min: sent without one",
        N_("no fraud risk assessment after %(n)s min: sent without one"),
    ),
    (
        r"high fraud risk assessed after the order was sent: .+",
        N_("high fraud risk assessed after the order was sent: cancel it on the shop to cancel it at the provider"),
    ),
    (
        r"the shop has (?P<n>\d+) locations \((?P<names>.+)\): choose on the settings page .+; nothing written",
        N_(
            "the shop has %(n)s locations (%(names)s): choose on the settings page which one the provider's "
            "stock goes to (or map each fulfilment centre to one); nothing written"
        ),
    ),
    (r"cancel at the provider requested by (?P<actor>.+)", N_("cancel at the provider requested by %(actor)s")),
    (r"cancelled on the shop before push", N_("cancelled on the shop before it was sent")),
    (r"cancelled on the shop after push", N_("cancelled on the shop after it was sent")),
    (r"cancelled on the shop after it shipped", N_("cancelled on the shop after it shipped")),
    (r"cancelled before push", N_("cancelled before it was sent")),
    (r"cancelled before it reached the provider", N_("cancelled before it reached the provider")),
    (
        r"customer's address and contact redacted \(customers/redact\)",
        N_("the customer's address and contact were erased at their request"),
    ),
    (r"found by reconciliation: its webhook never arrived", N_("found by reconciliation: its webhook never arrived")),
    (r"ignored: (?P<inner>.+)", N_("ignored: %(inner)s")),
    (
        r"a line to ship has no SKU, so the provider cannot pick it: add the SKU on the shop",
        N_("a line to ship has no SKU, so the provider cannot pick it: add the SKU on the shop"),
    ),
    # Who did it (the audit's actor, inside other phrases).
    (r"merchant \(signed link\)", N_("the merchant (signed link)")),
    (r"merchant \(Shopify user (?P<user>.+)\)", N_("the merchant (Shopify user %(user)s)")),
    (r"operator \((?P<command>.+)\)", N_("the operator (%(command)s)")),
    # Answers to the page's buttons and forms (jobs.actions, jobs.shop_config).
    (r"(?P<order>.+) will be sent again", N_("%(order)s will be sent again")),
    (r"(?P<order>.+): cancel sent to the provider", N_("%(order)s: cancel sent to the provider")),
    (
        r"(?P<order>.+) is (?P<state>\w+); only failed orders are retried",
        N_("%(order)s is %(state)s; only failed orders are retried"),
    ),
    (
        r"(?P<order>.+) is (?P<state>\w+); only orders at the provider can be cancelled there",
        N_("%(order)s is %(state)s; only orders at the provider can be cancelled there"),
    ),
    (r"no such order in this shop", N_("no such order in this shop")),
    (r"Settings saved", N_("Settings saved")),
    (r"Nothing changed", N_("Nothing changed")),
    (r"Nothing saved: fix the fields marked below", N_("Nothing saved: fix the fields marked below")),
    (r"Saved: (?P<provider>\S+) accepted the credentials", N_("Saved: %(provider)s accepted the credentials")),
    (
        r"(?P<provider>\S+) refused these credentials: (?P<why>.+)",
        N_("%(provider)s refused these credentials: %(why)s"),
    ),
    (r"(?P<provider>\S+) needs: (?P<fields>.+)", N_("%(provider)s needs: %(fields)s")),
    (
        r"(?P<count>\d+) order\(s\) waiting for a provider are being sent",
        N_("%(count)s order(s) waiting for a provider are being sent"),
    ),
    # Notices (``tell_merchant``) shown in the page's banner.
    (
        r"webhook (?P<topic>\S+) was missing and is created again",
        N_("webhook %(topic)s was missing and is created again"),
    ),
    (r"webhooks could not be checked: (?P<why>.+)", N_("webhooks could not be checked: %(why)s")),
    (r"orders could not be reconciled: (?P<why>.+)", N_("orders could not be reconciled: %(why)s")),
    (r"connected: (?P<check>.+); creating webhooks", N_("connected: %(check)s; creating webhooks")),
    (
        r"connected: (?P<check>.+); webhooks created: (?P<created>.+)",
        N_("connected: %(check)s; webhooks created: %(created)s"),
    ),
    (
        r"WooCommerce sent (?P<topic>\S+) as an error \((?P<why>.+)\): reconnect the store",
        N_("WooCommerce sent %(topic)s as an error (%(why)s): reconnect the store"),
    ),
]
_COMPILED = [(re.compile(pattern + r"\Z", re.DOTALL), msgid) for pattern, msgid in _RULES]
_PHRASES = ("actor", "inner")


def strip_ids(text: str) -> str:
    """``text`` without Shopify GIDs or provider references (the merchant's view only)."""
    text = _GID_IN_PARENS.sub("", text)
    text = _GID.sub(lambda m: f"{m.group('kind').lower()} {m.group('id')}", text)
    return PROVIDER_REFERENCE.sub("", text).replace("  ", " ").strip()


def merchant_text(text: str | None, translate: Callable[..., str] = gettext) -> str:
    """A stored English phrase as the merchant reads it: known phrases in their language (a text
    no rule knows whole is read as parts joined by "; "), internal ids removed either way."""
    if not text:
        return ""
    whole = _known(text, translate)
    if whole is not None:
        return whole
    return "; ".join(_one(part, translate) for part in text.split("; "))


def _one(text: str, translate: Callable[..., str]) -> str:
    known = _known(text, translate)
    return strip_ids(text) if known is None else known


def _known(text: str, translate: Callable[..., str]) -> str | None:
    for pattern, msgid in _COMPILED:
        found = pattern.match(text)
        if found is None:
            continue
        values = {k: (_one(v, translate) if k in _PHRASES else strip_ids(v)) for k, v in found.groupdict().items() if v}
        return translate(msgid, **values) if values else translate(msgid)
    return None
