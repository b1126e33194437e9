"""Tiers as stored in JSON (a catalog charge's, per currency; a subscription charge
segment's, one list): decimals as exact strings, so no JSON number round trip can touch them.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal

from partnerbill.catalog.enums import PriceFormat, Tier
from partnerbill.tables.catalog import StoredTier


def _units(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def tiers_json(tiers: Sequence[Tier]) -> list[StoredTier]:
    return [
        {
            "tier": tier.tier,
            "startingUnit": format(tier.starting_unit, "f"),
            "endingUnit": _units(tier.ending_unit),
            "price": format(tier.price, "f"),
            "priceFormat": tier.price_format.value,
        }
        for tier in tiers
    ]


def tiers_from_json(stored: Sequence[StoredTier]) -> tuple[Tier, ...]:
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
) -> dict[str, list[StoredTier]]:
    return {currency: tiers_json(found) for currency, found in tiers.items()}


def tiers_by_currency_from_json(
    stored: Mapping[str, Sequence[StoredTier]],
) -> dict[str, tuple[Tier, ...]]:
    return {currency: tiers_from_json(found) for currency, found in stored.items()}
