"""Tiers as stored in JSON (a catalog charge's, per currency; a subscription charge
segment's, one list): decimals as exact strings, so no JSON number round trip can touch them.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from partnerbill.catalog.enums import PriceFormat, Tier


def _units(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def tiers_json(tiers: Sequence[Tier]) -> list[dict[str, Any]]:
    return [
        {
            "tier": tier.tier,
            "startingUnit": _units(tier.starting_unit),
            "endingUnit": _units(tier.ending_unit),
            "price": _units(tier.price),
            "priceFormat": tier.price_format.value,
        }
        for tier in tiers
    ]


def tiers_from_json(stored: Sequence[Mapping[str, Any]]) -> tuple[Tier, ...]:
    return tuple(
        Tier(
            tier=int(entry["tier"]),
            starting_unit=Decimal(entry["startingUnit"]),
            ending_unit=None if entry["endingUnit"] is None else Decimal(entry["endingUnit"]),
            price=Decimal(entry["price"]),
            price_format=PriceFormat(entry["priceFormat"]),
        )
        for entry in stored
    )


def tiers_by_currency_json(
    tiers: Mapping[str, Sequence[Tier]],
) -> dict[str, list[dict[str, Any]]]:
    return {currency: tiers_json(found) for currency, found in tiers.items()}


def tiers_by_currency_from_json(stored: Mapping[str, Any]) -> dict[str, tuple[Tier, ...]]:
    return {currency: tiers_from_json(found) for currency, found in stored.items()}
