"""Carrier names and tracking pages: what a provider calls a carrier → what the shop platform shows.

Shopify builds a clickable link and follows the parcel only for the company names on its list of
supported tracking companies, spelt exactly ("capitalization matters",
shopify.dev FulfillmentTrackingInput.company). Providers spell carriers freely ("UPS Ground",
"fedex_ground", "DHL"), so every alias maps here to one entry. The tracking page comes from the
provider when it sent one; the table's page (reference/fulfilment.md Part B) is used only when it
did not. An unknown carrier keeps its own name and the provider's URL.

When a number arrives with no carrier, the carrier is guessed from the number's format: our own
rules for the French networks first (Colissimo, Chronopost, La Poste S10), then the
``tracking-numbers`` library (UPS, FedEx, USPS, DHL, S10 check digits; pure Python, offline).
A guess is marked as such on the result.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import tracking_numbers


@dataclass(frozen=True)
class Carrier:
    company: str  # exactly as on Shopify's list of supported tracking companies
    url: str = ""  # public tracking page, "{n}" is the number; "" when we know none


@dataclass(frozen=True)
class Tracking:
    """Tracking as the platform should receive it."""

    company: str
    number: str
    url: str
    guessed: bool = False  # True: the company was inferred from the number's format


def normalise(name: str) -> str:
    """Lower case, accents dropped, any run of punctuation or spaces made one space."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.lower()).split())


MONDIAL_RELAY_POSTCODE = "&codePostal={zip}"  # 8-digit Mondial Relay numbers need the postcode

CARRIERS: dict[str, Carrier] = {
    "UPS": Carrier("UPS", "https://www.ups.com/track?tracknum={n}"),
    "USPS": Carrier("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}"),
    "FedEx": Carrier("FedEx", "https://www.fedex.com/fedextrack/?trknbr={n}"),
    "DHL Express": Carrier("DHL Express", "https://www.dhl.com/fr-fr/home/tracking.html?tracking-id={n}"),
    "DHL eCommerce": Carrier("DHL eCommerce"),
    "Colissimo": Carrier("Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code={n}"),
    "La Poste": Carrier("La Poste", "https://www.laposte.fr/outils/suivre-vos-envois?code={n}"),
    "Chronopost": Carrier("Chronopost", "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={n}"),
    "Mondial Relay": Carrier("Mondial Relay", "https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition={n}"),
    "TNT": Carrier("TNT", "https://www.tnt.com/express/en_gb/site/tracking.html?searchType=con&cons={n}"),
    "DPD": Carrier("DPD", "https://www.dpd.fr/trace/{n}"),
    "GLS": Carrier("GLS", "https://gls-group.eu/FR/fr/suivi-colis?match={n}"),
    "Colis Privé": Carrier("Colis Privé"),
    "Royal Mail": Carrier("Royal Mail"),
    "Deutsche Post": Carrier("Deutsche Post"),
    "PostNL": Carrier("PostNL"),
    "BPost": Carrier("BPost"),
    "Correos": Carrier("Correos"),
    "Poste Italiane": Carrier("Poste Italiane"),
    "Swiss Post": Carrier("Swiss Post"),
    "Canada Post": Carrier("Canada Post"),
    "Australia Post": Carrier("Australia Post"),
    "China Post": Carrier("China Post"),
    "OnTrac": Carrier("OnTrac"),
    "Amazon": Carrier("Amazon"),
    "CDL Last Mile": Carrier("CDL Last Mile"),
}

# Normalised spelling → key of CARRIERS. A name also matches by its leading words, so
# "UPS Ground" and "FedEx Home Delivery" need no entry of their own.
ALIASES: dict[str, str] = {
    "united parcel service": "UPS",
    "us postal service": "USPS",
    "united states postal service": "USPS",
    "fed ex": "FedEx",
    "federal express": "FedEx",
    "dhl": "DHL Express",
    "dhl express worldwide": "DHL Express",
    "dhl ecommerce": "DHL eCommerce",
    "dhl e commerce": "DHL eCommerce",
    "dhl global mail": "DHL eCommerce",
    "laposte": "La Poste",
    "lettre suivie": "La Poste",
    "chrono post": "Chronopost",
    "mondialrelay": "Mondial Relay",
    "mondial relay point relais": "Mondial Relay",
    "tnt express": "TNT",
    "dpd france": "DPD",
    "dpd predict": "DPD",
    "gls france": "GLS",
    "colis prive": "Colis Privé",
    "colisprive": "Colis Privé",
    "ontrac": "OnTrac",
    "amazon logistics": "Amazon",
}

ALIASES.update({normalise(key): key for key in CARRIERS})

PLACEHOLDERS = frozenset({"", "other", "others", "unknown", "none", "n a", "na"})

# S10 (UPU) items posted in France, by service letter: C parcels (Colissimo international),
# E EMS (operated by Chronopost), L/R/V letters (La Poste).
_S10_FR = re.compile(r"^([A-Z])[A-Z](\d{8})(\d)FR$")
_S10_FR_SERVICE = {"C": "Colissimo", "E": "Chronopost", "L": "La Poste", "R": "La Poste", "V": "La Poste"}
_CHRONOPOST = re.compile(r"^X[A-Z]\d{9}FR$")  # Chronopost's own 13-character numbers
_COLISSIMO = re.compile(r"^\d[A-Z]\d{11}$")  # domestic Colissimo: 6A…, 8R…, 13 characters
# S10 numbers from other posts, by the country suffix.
_S10_COUNTRY = {
    "US": "USPS",
    "GB": "Royal Mail",
    "DE": "Deutsche Post",
    "NL": "PostNL",
    "BE": "BPost",
    "ES": "Correos",
    "IT": "Poste Italiane",
    "CH": "Swiss Post",
    "CA": "Canada Post",
    "AU": "Australia Post",
    "CN": "China Post",
    "FR": "La Poste",
}
_LIBRARY_COURIERS = {
    "ups": "UPS",
    "fedex": "FedEx",
    "usps": "USPS",
    "dhl": "DHL Express",
    "ontrac": "OnTrac",
    "amazon": "Amazon",
    "cdl": "CDL Last Mile",
}


def find(name: str) -> Carrier | None:
    """The table entry for a provider's carrier name, or None when we do not know it."""
    words = normalise(name).split()
    for size in range(len(words), 0, -1):  # longest leading match: "dhl ecommerce" before "dhl"
        key = ALIASES.get(" ".join(words[:size]))
        if key:
            return CARRIERS[key]
    return None


def _s10_check_digit(serial: str) -> int:
    total = sum(int(d) * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def guess(number: str) -> Carrier | None:
    """The carrier a bare tracking number most likely belongs to, from its format alone."""
    number = clean_number(number).upper()
    match = _S10_FR.match(number)
    if match and _s10_check_digit(match.group(2)) == int(match.group(3)):
        return CARRIERS[_S10_FR_SERVICE.get(match.group(1), "La Poste")]
    if _CHRONOPOST.match(number):
        return CARRIERS["Chronopost"]
    if _COLISSIMO.match(number):
        return CARRIERS["Colissimo"]
    found = tracking_numbers.get_tracking_number(number)
    if found is None:
        return None
    # S10 numbers end with the posting country: the national post carries them.
    code = found.courier.code
    key = _S10_COUNTRY.get(number[-2:]) if code == "s10" else _LIBRARY_COURIERS.get(code)
    return CARRIERS[key] if key else None


def clean_number(number: str) -> str:
    # Numbers are printed in groups ("9400 1000 …"); the carriers' systems want them joined.
    return "".join(number.split())


def resolve(carrier: str, number: str, url: str = "", postcode: str = "") -> Tracking:
    """Tracking for the platform from what the provider sent; never raises.

    The provider's URL wins; the table's page fills in only when it is missing. A carrier we do
    not know keeps its own name. No carrier at all: the company is guessed from the number.
    """
    number = clean_number(number)
    url = url.strip()
    carrier = carrier.strip()
    guessed = False
    entry = find(carrier)
    if entry is None and normalise(carrier) in PLACEHOLDERS and number:
        entry = guess(number)
        guessed = entry is not None
    if entry is None:
        return Tracking(company="" if normalise(carrier) in PLACEHOLDERS else carrier, number=number, url=url)
    if not url and number and entry.url:
        url = entry.url.format(n=quote(number, safe=""))
        if entry.company == "Mondial Relay" and postcode.strip():
            url += MONDIAL_RELAY_POSTCODE.format(zip=quote(postcode.strip(), safe=""))
    return Tracking(company=entry.company, number=number, url=url, guessed=guessed)
