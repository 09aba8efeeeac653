"""Carriers of the sandbox fulfilment centre: which one ships a parcel, and its tracking number.

Pure functions (no I/O). The sandbox warehouse sits in France, so a parcel goes by the carrier a
French 3PL would book: Colissimo or Chronopost at home, UPS across the EU when speed matters, DHL
Express (fast) or UPS (standard) further away. Tracking numbers follow each carrier's published
layout *with a valid check digit*, so that Relais' own carrier detection and the shop's tracking
links see realistic values:

- Colissimo, France: ``6A`` + 11 digits (La Poste's domestic parcel number; no public check digit).
- Colissimo, abroad, and Chronopost: UPU S10, ``XX12345678CFR``: 2 letters, 8 digits, a mod-11
  check digit weighted 8,6,4,2,3,5,9,7, the origin country. Colissimo International uses the
  parcel prefix ``CP``; Chronopost ``XW``.
- UPS: ``1Z`` + 6-character shipper account + 2-digit service + 7-digit package + check digit
  (letters count as ``(ord(c) - 63) % 10``; odd positions doubled; mod 10).
- DHL Express: 10 digits, the last being the first nine read as a number, mod 7.

Tracking pages are those of reference/fulfilment.md Part B.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# EU member states (France and Monaco are handled as domestic before this is consulted).
EU = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
EXPRESS_WORDS = ("express", "chrono", "next", "priority", "overnight", "24", "2-day", "2 day")

TRACKING_URLS = {
    "Colissimo": "https://www.laposte.fr/outils/suivre-vos-envois?code={n}",
    "Chronopost": "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={n}",
    "UPS": "https://www.ups.com/track?tracknum={n}",
    "DHL Express": "https://www.dhl.com/fr-fr/home/tracking.html?tracking-id={n}",
}

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_UPS_SHIPPER = "R8X42V"  # the sandbox's (made-up) UPS account number
_rng = random.SystemRandom()


@dataclass(frozen=True)
class Label:
    carrier: str
    service: str
    tracking_number: str
    tracking_url: str


def is_express(shipping_method: str) -> bool:
    method = shipping_method.lower()
    return any(word in method for word in EXPRESS_WORDS)


def buy_label(country_code: str, shipping_method: str) -> Label:
    """The carrier, service and a fresh tracking number for a parcel to ``country_code``."""
    country = (country_code or "FR").upper()
    express = is_express(shipping_method)
    if country in ("FR", "MC"):
        if express:
            carrier, service, number = "Chronopost", "Chrono 13", s10("XW", "FR")
        else:
            carrier, service, number = "Colissimo", "Colissimo Domicile", colissimo_domestic()
    elif country in EU:
        if express:
            carrier, service, number = "UPS", "UPS Express Saver", ups("65")
        else:
            carrier, service, number = "Colissimo", "Colissimo International", s10("CP", "FR")
    elif express:
        carrier, service, number = "DHL Express", "Express Worldwide", dhl_express()
    else:
        carrier, service, number = "UPS", "UPS Standard", ups("11")
    return Label(carrier, service, number, TRACKING_URLS[carrier].format(n=number))


def _digits(count: int) -> str:
    return "".join(str(_rng.randrange(10)) for _ in range(count))


def colissimo_domestic() -> str:
    return "6A" + _digits(11)


def s10_check_digit(serial: str) -> int:
    """UPU S10 check digit of the 8-digit serial."""
    total = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def s10(service: str, country: str) -> str:
    serial = _digits(8)
    return f"{service}{serial}{s10_check_digit(serial)}{country}"


def ups_check_digit(body: str) -> int:
    """UPS check digit of the 15 characters between ``1Z`` and the check digit."""
    total = 0
    for i, char in enumerate(body):
        value = int(char) if char.isdigit() else (ord(char) - 63) % 10
        total += value * 2 if i % 2 else value
    return (10 - total % 10) % 10


def ups(service_code: str) -> str:
    body = _UPS_SHIPPER + service_code + _digits(7)
    return f"1Z{body}{ups_check_digit(body)}"


def dhl_express() -> str:
    first = str(_rng.randrange(10**8, 10**9))
    return f"{first}{int(first) % 7}"
