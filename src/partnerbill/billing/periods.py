"""Service periods of a recurring charge, and which of them a bill run bills now.

Pure date arithmetic, so a bill run is reproducible: the same charge, target date and
charged-through date always give the same invoice lines. Periods carry their whole billing
period too, because a partial period is priced as a fraction of it.
"""

import calendar
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from partnerbill.catalog.enums import BillingPeriod, BillingTiming
from partnerbill.core.input_policy import FIRST_DATE, LAST_DATE
from partnerbill.core.money import currency_scale

DAYS_PER_WEEK = 7
ONE_DAY = timedelta(days=1)
# One call never yields more: charge starts and `until` lie in the input range, and the
# shortest period is a week.
MAX_SERVICE_PERIODS = (LAST_DATE - FIRST_DATE).days // DAYS_PER_WEEK + 2


@dataclass(frozen=True, slots=True)
class ServicePeriod:
    """Service from `start` to `end` (inclusive, as an invoice item's serviceEndDate), part of
    the billing period `full_start`..`full_end` (inclusive); `proration` is the share of the full
    period's days it covers, 1 for a full period."""

    start: date
    end: date
    full_start: date
    full_end: date
    proration: Decimal

    def __post_init__(self) -> None:
        assert self.full_start <= self.start <= self.end <= self.full_end
        assert 0 < self.proration <= 1


def add_months(day: date, months: int, bill_cycle_day: int) -> date:
    """The bill cycle date `months` after `day`'s month, clamped to that month's last day.

    Clamping from the bill cycle day, not from `day`, keeps BCD 31 on the 31st after February.
    Saturates at the calendar's ends, so a stored date near them cannot make billing overflow.
    """
    assert 1 <= bill_cycle_day <= 31
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    if year > date.max.year:
        return date.max
    if year < date.min.year:
        return date.min
    days_in_month = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(bill_cycle_day, days_in_month))


def service_periods(
    charge_start: date,
    charge_end: date | None,
    billing_period: BillingPeriod,
    specific_months: int | None,
    bill_cycle_day: int,
    until: date,
) -> Iterator[ServicePeriod]:
    """The periods of a recurring charge, in order, starting before `until` and `charge_end`
    (both exclusive; `charge_end` None: open-ended).

    Month-based periods run from one bill cycle date to the day before the next; a charge that
    starts between bill cycle dates gets a partial first period up to the first of them. Week
    periods are 7 days from `charge_start`. The period `charge_end` falls in is cut there.
    """
    months = billing_period.months(specific_months)
    if months is None:
        full_periods = _week_periods(charge_start)
    else:
        full_periods = _month_periods(charge_start, months, bill_cycle_day)
    for count, (full_start, full_end) in enumerate(full_periods, start=1):
        start = max(full_start, charge_start)
        if start >= until or (charge_end is not None and start >= charge_end):
            return
        assert count <= MAX_SERVICE_PERIODS, f"more than {MAX_SERVICE_PERIODS} service periods"
        if full_end < full_start:  # saturated at the calendar's end: no whole period fits
            return
        end = full_end if charge_end is None else min(full_end, charge_end - ONE_DAY)
        yield ServicePeriod(
            start, end, full_start, full_end, _proration(start, end, full_start, full_end)
        )


def billable_periods(
    periods: Iterable[ServicePeriod],
    timing: BillingTiming,
    target_date: date,
    charged_through: date | None,
) -> list[ServicePeriod]:
    """The periods a bill run with `target_date` bills now: in advance, those started by the
    target date; in arrears, those whose service ended before it. Periods starting before
    `charged_through` (the exclusive end of what is already billed) are never billed again.
    """
    billable: list[ServicePeriod] = []
    previous: ServicePeriod | None = None
    for period in periods:
        assert previous is None or previous.end < period.start, "periods in order, no overlap"
        previous = period
        if period.start > target_date:
            break
        if charged_through is not None and period.start < charged_through:
            continue
        match timing:
            case BillingTiming.IN_ADVANCE:
                due = True
            case BillingTiming.IN_ARREARS:
                due = period.end < target_date
        if due:
            billable.append(period)
    return billable


def prorated_amount(amount_per_period: Decimal, proration: Decimal, currency: str) -> Decimal:
    """`proration` of a period's amount, rounded half up to the currency's minor unit: an
    invoice line is money, so it carries no more places than the currency has."""
    assert 0 <= proration <= 1
    quantum = Decimal(1).scaleb(-currency_scale(currency))
    return (amount_per_period * proration).quantize(quantum, rounding=ROUND_HALF_UP)


def from_day(period: ServicePeriod, day: date) -> ServicePeriod:
    """The part of `period` from `day` on (`day` within it), prorated against its full period."""
    assert period.start <= day <= period.end
    proration = _proration(day, period.end, period.full_start, period.full_end)
    return ServicePeriod(day, period.end, period.full_start, period.full_end, proration)


def _proration(start: date, end: date, full_start: date, full_end: date) -> Decimal:
    return Decimal((end - start).days + 1) / Decimal((full_end - full_start).days + 1)


def _week_periods(charge_start: date) -> Iterator[tuple[date, date]]:
    """Unbounded 7-day periods from `charge_start`; the caller stops."""
    for index in itertools.count():
        full_start = _days_after(charge_start, DAYS_PER_WEEK * index)
        yield full_start, _days_after(full_start, DAYS_PER_WEEK - 1)


def _days_after(day: date, days: int) -> date:
    """`day` plus `days`, saturating at the calendar's end."""
    return day + timedelta(days=days) if days <= (date.max - day).days else date.max


def _month_periods(
    charge_start: date, months: int, bill_cycle_day: int
) -> Iterator[tuple[date, date]]:
    """Unbounded billing periods aligned to the bill cycle day, the first one containing
    `charge_start`; the caller stops.

    Each boundary is computed from the anchor, not from the previous boundary, so a clamped
    February date never drags later periods off the bill cycle day.
    """
    anchor = add_months(charge_start, 0, bill_cycle_day)
    if anchor < charge_start:
        anchor = add_months(charge_start, 1, bill_cycle_day)
    first_index = 0 if anchor == charge_start else -1
    for index in itertools.count(first_index):
        full_start = add_months(anchor, index * months, bill_cycle_day)
        yield full_start, add_months(anchor, (index + 1) * months, bill_cycle_day) - ONE_DAY
