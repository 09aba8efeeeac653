"""Providers' carrier names → Shopify's tracking companies and pages; carriers guessed from bare numbers."""

from __future__ import annotations

import pytest

from integrations.carriers import CARRIERS, Tracking, resolve

# From Shopify's list of supported tracking companies (FulfillmentTrackingInfo.company, admin
# GraphQL docs): the exact spellings Shopify turns into links and follows.
SHOPIFY_SUPPORTED = {
    "Amazon", "Australia Post", "BPost", "Canada Post", "CDL Last Mile", "China Post", "Chronopost",
    "Colis Privé", "Colissimo", "Correos", "Deutsche Post", "DHL eCommerce", "DHL Express", "DPD",
    "FedEx", "GLS", "La Poste", "Mondial Relay", "OnTrac", "Poste Italiane", "PostNL", "Royal Mail",
    "Swiss Post", "TNT", "UPS", "USPS",
}  # fmt: skip


def test_every_company_in_the_table_is_spelt_as_shopify_lists_it() -> None:
    assert {carrier.company for carrier in CARRIERS.values()} <= SHOPIFY_SUPPORTED


@pytest.mark.parametrize(
    ("sent", "company"),
    [
        ("USPS", "USPS"),
        ("usps", "USPS"),
        ("UPS Ground", "UPS"),
        ("  ups  ", "UPS"),
        ("FedEx", "FedEx"),
        ("fedex_ground", "FedEx"),
        ("FedEx Home Delivery", "FedEx"),
        ("DHL Express", "DHL Express"),
        ("DHL", "DHL Express"),
        ("DHL eCommerce", "DHL eCommerce"),
        ("COLISSIMO", "Colissimo"),
        ("La Poste", "La Poste"),
        ("la-poste", "La Poste"),
        ("Chronopost 13H", "Chronopost"),
        ("mondial  relay", "Mondial Relay"),
        ("TNT Express", "TNT"),
        ("DPD Predict", "DPD"),
        ("GLS", "GLS"),
        ("Colis prive", "Colis Privé"),
    ],
)
def test_providers_spellings_map_to_shopifys_company(sent: str, company: str) -> None:
    assert resolve(sent, "123").company == company


def test_the_providers_tracking_url_wins_over_the_table() -> None:
    sent = "https://tracking.example/3pl/1Z999AA10123456784"
    assert resolve("UPS", "1Z999AA10123456784", sent).url == sent


@pytest.mark.parametrize(
    ("carrier", "number", "url"),
    [
        ("Colissimo", "6A12345678901", "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901"),
        ("Chronopost", "XY123456789FR", "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=XY123456789FR"),
        ("UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784"),
        ("USPS", "9400111899223100000000", "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223100000000"),
        ("DPD", "15501234567890", "https://www.dpd.fr/trace/15501234567890"),
        ("GLS", "ZX12AB34", "https://gls-group.eu/FR/fr/suivi-colis?match=ZX12AB34"),
    ],
)  # fmt: skip
def test_the_tables_public_page_is_used_when_the_provider_sent_none(carrier: str, number: str, url: str) -> None:
    assert resolve(carrier, number).url == url


def test_mondial_relay_page_carries_the_postcode_when_known() -> None:
    url = resolve("Mondial Relay", "12345678", postcode="75011").url
    assert url == "https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition=12345678&codePostal=75011"


def test_numbers_are_joined_and_quoted_into_the_page() -> None:
    tracking = resolve("USPS", "9400 1118 9922 3100 0000 00")
    assert tracking.number == "9400111899223100000000"
    assert resolve("DPD", "AB&C").url == "https://www.dpd.fr/trace/AB%26C"


def test_an_unknown_carrier_keeps_its_own_name_and_the_providers_url() -> None:
    assert resolve("Acme Freight", "AF-1", "https://acme.example/t/AF-1") == Tracking(
        "Acme Freight", "AF-1", "https://acme.example/t/AF-1"
    )
    assert resolve("Acme Freight", "AF-1") == Tracking("Acme Freight", "AF-1", "")


def test_a_named_but_unknown_carrier_is_not_second_guessed_from_the_number() -> None:
    assert resolve("Acme Freight", "1Z999AA10123456784").company == "Acme Freight"


@pytest.mark.parametrize(
    ("number", "company"),
    [
        ("1Z999AA10123456784", "UPS"),
        ("986578788855", "FedEx"),
        ("449044304137821", "FedEx"),
        ("9400 1118 9922 3100 0000 00", "USPS"),
        ("3318810025", "DHL Express"),
        ("6A12345678901", "Colissimo"),  # domestic Colissimo
        ("CP123456785FR", "Colissimo"),  # S10, parcel service, check digit 5
        ("RB123456785FR", "La Poste"),  # S10 registered letter
        ("EE123456785FR", "Chronopost"),  # S10 EMS, operated by Chronopost in France
        ("XY123456789FR", "Chronopost"),
        ("RB123456785GB", "Royal Mail"),
    ],
)
def test_a_number_without_carrier_gets_a_guessed_company(number: str, company: str) -> None:
    tracking = resolve("", number)
    assert (tracking.company, tracking.guessed) == (company, True)


def test_a_placeholder_carrier_name_is_treated_as_none() -> None:
    assert resolve("Other", "1Z999AA10123456784") == Tracking(
        "UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784", guessed=True
    )


@pytest.mark.parametrize("number", ["RB123456789FR", "HELLO-WORLD", "1234567890"])
def test_a_number_matching_no_format_or_failing_its_check_digit_is_not_guessed(number: str) -> None:
    assert resolve("", number) == Tracking("", number, "", guessed=False)
