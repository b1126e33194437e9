"""Price arithmetic for one charge: what one billing period costs, and that cost as MRR.

Pure functions over `Decimal`: the bill run and the metrics engine both call them, so an invoice
line and the contractedMrr it implies can never disagree about the price.
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from partnerbill.catalog.enums import BillingPeriod, ChargeModel, PriceFormat, Tier
from partnerbill.core.money import MAX_DECIMAL_PLACES, ZERO

# A unit price (a catalog price, an invoice line's) is as precise as any stored decimal.
UNIT_PRICE_MAX_DECIMALS = MAX_DECIMAL_PLACES
# Days in the month a week-based price is normalised to (Zuora: 140 per week -> 600 per month).
DAYS_PER_MRR_MONTH = 30
DAYS_PER_WEEK = 7
# MRR is kept this precise: finer than any currency, coarse enough to sum exactly in NUMERIC.
MRR_SCALE = 9
_MRR_QUANTUM = Decimal(1).scaleb(-MRR_SCALE)

# One tier's units, as (exclusive lower bound, inclusive upper bound; None = unbounded).
_Band = tuple[Decimal, Decimal | None, Tier]


def period_amount(model: ChargeModel, quantity: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """The price of one full billing period of `quantity` units.

    Tiers may be written Zuora's way (0-10, 11-20, 21+) or edge-sharing (0-10, 10-20): a tier
    starting where the previous one ended starts just after it. A quantity above the last tier's
    ending unit is the caller's error (orders validate it), not a price.
    """
    assert quantity >= 0, "quantity must not be negative"
    assert len(tiers) >= 1, "a charge has at least one tier"
    match model:
        case ChargeModel.FLAT_FEE:
            return tiers[0].price
        case ChargeModel.PER_UNIT:
            return tiers[0].price * quantity
        case ChargeModel.TIERED:
            return sum((_tier_amount(band, quantity) for band in _bands(tiers, quantity)), ZERO)
        case ChargeModel.VOLUME:
            return _volume_amount(_bands(tiers, quantity), quantity)


def monthly_amount(
    billing_period: BillingPeriod, specific_months: int | None, amount_per_period: Decimal
) -> Decimal:
    """`amount_per_period` normalised to one month (MRR), at `MRR_SCALE` decimal places.

    Quantized (ROUND_HALF_UP) because each charge's MRR is stored and account MRR is their sum:
    a fixed scale makes the account figure equal the sum of the stored parts, whatever order or
    grouping the sum is taken in.
    """
    months = billing_period.months(specific_months)
    if months is None:
        monthly = amount_per_period * DAYS_PER_MRR_MONTH / DAYS_PER_WEEK
    else:
        assert months > 0
        monthly = amount_per_period / months
    return monthly.quantize(_MRR_QUANTUM, rounding=ROUND_HALF_UP)


def _bands(tiers: Sequence[Tier], quantity: Decimal) -> list[_Band]:
    """Each tier's unit bounds, checking the tiers are sorted, contiguous and cover `quantity`."""
    assert tiers[0].starting_unit in (0, 1), "the first tier starts at unit 0 or 1"
    bands: list[_Band] = []
    lower = ZERO
    for index, tier in enumerate(tiers):
        if index > 0:
            previous_end = bands[-1][1]
            assert previous_end is not None, "only the last tier may be open-ended"
            assert tier.starting_unit in (previous_end, previous_end + 1), (
                f"tier {tier.tier} must start at or just after {previous_end}"
            )
            lower = previous_end
        assert tier.ending_unit is None or tier.ending_unit > lower, (
            f"tier {tier.tier} must end after it starts"
        )
        bands.append((lower, tier.ending_unit, tier))
    top = bands[-1][1]
    assert top is None or quantity <= top, f"quantity {quantity} is above the last tier ({top})"
    return bands


def _tier_amount(band: _Band, quantity: Decimal) -> Decimal:
    """What the units of `quantity` that fall in this tier add to a tiered price."""
    lower, upper, tier = band
    units = max(ZERO, (quantity if upper is None else min(quantity, upper)) - lower)
    match tier.price_format:
        case PriceFormat.PER_UNIT:
            return tier.price * units
        case PriceFormat.FLAT_FEE:
            return tier.price if units > 0 else ZERO


def _volume_amount(bands: list[_Band], quantity: Decimal) -> Decimal:
    """The whole quantity at the price of the one tier that contains it; nothing for none."""
    for lower, upper, tier in bands:
        if lower < quantity and (upper is None or quantity <= upper):
            match tier.price_format:
                case PriceFormat.PER_UNIT:
                    return tier.price * quantity
                case PriceFormat.FLAT_FEE:
                    return tier.price
    assert quantity == 0, "the tiers cover every positive quantity up to the last one's end"
    return ZERO
