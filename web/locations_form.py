"""The settings page's location choices: the stock location picker and the centre → location map.

Pure: the form, and the lists the page offered (``jobs.locations.Listing``), in; setting values
and errors out. A value the page did not offer is refused (the form is the merchant's browser's,
not ours). When the lists could not be read, the page shows the plain location field instead
and the mapping is left as it was (``locations_listed`` is absent), so an outage never wipes a
choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from integrations.locations import FulfilmentCentre, ShopLocation
from web.settings_form import Parsed

CENTRE_FIELD = "centre:"  # one select per provider centre: ``centre:<centre id>`` → shop location id


def parse_locations(
    form: Mapping[str, str],
    locations: Sequence[ShopLocation],
    centres: Sequence[FulfilmentCentre],
    out: Parsed,
) -> None:
    """Add ``location_id`` and ``stock_locations`` to ``out`` when the page offered the pickers.

    A centre left on "the location above" follows ``location_id`` once any centre is mapped
    elsewhere (so "all but one centre here" is one choice); with none mapped, the mapping is
    empty and every centre counts towards the one stock location.
    """
    if form.get("locations_listed") != "1":
        return
    known = {loc.id for loc in locations}
    chosen = (form.get("location_id") or "").strip()
    if chosen and chosen not in known:
        out.errors["location_id"] = "choose one of the shop's locations"
        return
    out.values["location_id"] = chosen
    mapping: dict[str, str] = {}
    for centre in centres:
        target = (form.get(CENTRE_FIELD + centre.id) or "").strip()
        if target and target not in known:
            out.errors["stock_locations"] = f"choose one of the shop's locations for {centre.name}"
            return
        if target:
            mapping[centre.id] = target
    if mapping and chosen:
        mapping = {centre.id: mapping.get(centre.id, chosen) for centre in centres}
    out.values["stock_locations"] = mapping


def view(
    settings: Mapping[str, Any], locations: Sequence[ShopLocation], centres: Sequence[FulfilmentCentre]
) -> dict[str, Any]:
    """What the pickers show: each centre's current choice ("" = the location above)."""
    mapping = {str(k): str(v) for k, v in (settings.get("stock_locations") or {}).items() if v}
    chosen = str(settings.get("location_id") or "")
    return {
        "centre_choice": {c.id: ("" if mapping.get(c.id, "") == chosen else mapping.get(c.id, "")) for c in centres},
        "several": len(locations) > 1,
        "unknown_choice": chosen if chosen and chosen not in {loc.id for loc in locations} else "",
    }
