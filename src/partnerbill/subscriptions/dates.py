"""Subscription dates: the trigger dates of an order action, and terms added to a date
(saturating for reads, checked for writes). Pure functions: no query, no lock.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from partnerbill.core.errors import Resource
from partnerbill.core.input_policy import derived_date

SUBSCRIPTION = Resource.SUBSCRIPTION
DAYS_PER_WEEK = 7


@dataclass(frozen=True, slots=True)
class ActionDates:
    """The trigger dates of an order action (Zuora's three, defaulting to contract effective)."""

    contract_effective: date
    service_activation: date
    customer_acceptance: date


def add_term(start: date, period: int, period_type: str) -> date:
    """`start` plus a term of `period` `period_type`s (Day, Week, Month, Year).

    Saturates at the calendar's ends instead of overflowing, so a read of any stored row can
    compute; a write refuses a result outside the input range with `checked_end`.
    """
    match period_type:
        case "Day" | "Week":
            days = period * (DAYS_PER_WEEK if period_type == "Week" else 1)
            if days > (date.max - start).days:
                return date.max
            if -days > (start - date.min).days:
                return date.min
            return start + timedelta(days=days)
        case "Month" | "Year":
            months = period * (12 if period_type == "Year" else 1)
            year, month_index = divmod(start.year * 12 + start.month - 1 + months, 12)
            if year > date.max.year:
                return date.max
            if year < date.min.year:
                return date.min
            last_day = calendar.monthrange(year, month_index + 1)[1]
            return date(year, month_index + 1, min(start.day, last_day))
    raise AssertionError(period_type)


def checked_end(start: date, period: int, period_type: str, field: str, what: str) -> date:
    """A term end (or any date `period`s after `start`) a write stores: in the input range, or
    the request is refused naming `field`."""
    return derived_date(add_term(start, period, period_type), SUBSCRIPTION, field, what)
