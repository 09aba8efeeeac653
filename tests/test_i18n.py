"""The merchant's page in English and French: the language from Shopify's ``locale`` parameter,
else Accept-Language; dates and numbers in that locale; stored English notices shown translated,
their dynamic parts kept and internal ids never shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from jobs import states
from store.db import transaction
from store.models import Order
from store.orders import note
from tests.app_support import app_settings, fake_shopify, install, session_token
from tests.test_settings_page import add_order, bearer, csrf
from web.i18n import language_of
from web.notices import merchant_text

REPO = Path(__file__).resolve().parents[1]
FRENCH_TIME = re.compile(r"\d{1,2} [a-zéû]+\.? \d{4}(,| à)? \d{2}:\d{2}:\d{2} UTC")
ENGLISH_TIME = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2}\s?[AP]M UTC")


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


@pytest.fixture
def shop_id(runtime, shopify):  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    add_order(runtime, shop_id, "1001", states.FAILED, "sandbox refused the order: bad postcode")
    held = add_order(runtime, shop_id, "1002", states.HELD, "tagged review (a hold tag)")
    with transaction(runtime.sessions) as session:
        note(session.get(Order, held), "tracking 6A1 written to the shop (gid://shopify/Fulfillment/3)")
    return shop_id


def test_shopifys_locale_parameter_gives_the_page_in_french_with_french_dates(client, shop_id) -> None:  # type: ignore[no-untyped-def]
    for locale in ("fr", "fr-FR", "fr_CA"):
        page = client.get(f"/app?id_token={session_token()}&locale={locale}").text
        assert '<html lang="fr">' in page
        assert "À traiter" in page and "Commandes" in page and "Enregistrer les réglages" in page
        assert "Needs attention" not in page and "Save settings" not in page
        assert FRENCH_TIME.search(page), page
        assert "il y a" in page  # relative times in French
        assert "étiquetée review (une étiquette de mise en attente)" in page  # a stored reason, translated
        orders = page.split('id="orders"')[1].split('id="health"')[0]
        assert "suivi 6A1 transmis à la boutique" in orders and "gid://" not in orders


def test_accept_language_french_gives_the_page_in_french(client, shop_id) -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/app?id_token={session_token()}", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}).text
    assert '<html lang="fr">' in page and "À traiter" in page


def test_shopifys_locale_wins_over_accept_language(client, shop_id) -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/app?id_token={session_token()}&locale=en", headers={"Accept-Language": "fr"}).text
    assert '<html lang="en">' in page and "Needs attention" in page


def test_without_a_language_or_with_one_we_lack_the_page_is_in_english(client, shop_id) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, {"Accept-Language": "de-DE,de;q=0.9"}):
        page = client.get(f"/app?id_token={session_token()}&locale=xx-!!", headers=headers).text
        assert '<html lang="en">' in page and "Needs attention" in page
        assert ENGLISH_TIME.search(page), page
        assert "tagged review (a hold tag)" in page and " ago)" in page


def test_a_form_posted_from_the_french_page_answers_in_french(client, shop_id) -> None:  # type: ignore[no-untyped-def]
    page = client.get(f"/app?id_token={session_token()}&locale=fr").text
    assert 'name="locale" value="fr"' in page
    with_field = client.post(
        "/app/orders/1/retry", data={"csrf_token": csrf(page), "locale": "fr"}, headers=bearer()
    )  # the page's script also sends X-Relais-Locale
    assert "#1001 sera renvoyée" in with_field.text
    by_header = client.post(
        "/app/orders/1/retry", data={"csrf_token": csrf(page)}, headers={**bearer(), "X-Relais-Locale": "fr"}
    )
    assert "seules les commandes en échec sont relancées" in by_header.text


def test_numbers_follow_the_locale(app) -> None:  # type: ignore[no-untyped-def]
    from web.i18n import number

    with app.test_request_context("/app?locale=fr"):
        assert number(12345) == "12\u202f345"
    with app.test_request_context("/app"):
        assert number(12345) == "12,345"


def test_stored_phrases_keep_their_dynamic_parts_and_lose_internal_ids() -> None:
    plain = lambda text, **values: text % values if values else text  # noqa: E731 - English, untranslated
    assert merchant_text("sending to sandbox as 1-9000000489182927913", plain) == "sending to sandbox"
    assert merchant_text("accepted by shipbob as order 4242", plain) == "accepted by shipbob (its order 4242)"
    assert merchant_text("tracking 1Z9 written to the shop (gid://shopify/Fulfillment/3)", plain) == (
        "tracking 1Z9 written to the shop"
    )
    assert merchant_text("retried by merchant (Shopify user 42)", plain) == "retried by the merchant (Shopify user 42)"
    unknown = merchant_text("something new about gid://shopify/Order/5 and 3-900000000123", plain)
    assert "gid://" not in unknown and "900000000123" not in unknown and "something new" in unknown


@pytest.mark.parametrize(("raw", "language"), [("fr", "fr"), ("fr-FR", "fr"), ("FR_be", "fr"), ("en-GB", "en")])
def test_language_of_reads_shopify_locales(raw: str, language: str) -> None:
    assert language_of(raw) == language


@pytest.mark.parametrize("raw", ["", "de", "xx-!!", "a" * 200, None])
def test_language_of_refuses_what_we_have_not(raw: str | None) -> None:
    assert language_of(raw) is None


def test_the_committed_catalogue_is_complete_and_compiled_from_the_po(tmp_path: Path) -> None:
    po_path = REPO / "translations/fr/LC_MESSAGES/messages.po"
    with po_path.open("rb") as f:
        po = read_po(f)
    untranslated = [m.id for m in po if m.id and not (m.string if isinstance(m.string, str) else all(m.string))]
    assert untranslated == []
    with (REPO / "translations/fr/LC_MESSAGES/messages.mo").open("rb") as f:
        committed = read_mo(f)

    def entries(catalog):  # type: ignore[no-untyped-def]
        return {(m.id if isinstance(m.id, str) else tuple(m.id)): m.string for m in catalog if m.id}

    def strings(catalog):  # type: ignore[no-untyped-def]
        return {k: (v if isinstance(v, str) else tuple(v)) for k, v in entries(catalog).items()}

    assert strings(committed) == strings(po)
    pot = tmp_path / "messages.pot"  # every string of the page and of notices.py is in the catalogue
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "-o",
            str(pot),
            ".",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        extracted = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    have = {m.id if isinstance(m.id, str) else tuple(m.id) for m in po if m.id}
    assert extracted - have == set()
