"""Billing math by example and by property: charge-model prices, MRR normalisation, service
periods aligned to the bill cycle day, what a bill run bills, and prorated amounts. Pure
functions, so no database and no event loop."""

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerbill.billing.periods import (
    MAX_SERVICE_PERIODS,
    ServicePeriod,
    add_months,
    billable_periods,
    prorated_amount,
    service_periods,
)
from partnerbill.catalog.enums import BillingPeriod, BillingTiming, ChargeModel, PriceFormat, Tier
from partnerbill.catalog.pricing import monthly_amount, period_amount

D = Decimal
FLAT = PriceFormat.FLAT_FEE
UNIT = PriceFormat.PER_UNIT
ADVANCE = BillingTiming.IN_ADVANCE
ARREARS = BillingTiming.IN_ARREARS
FAR = date(2100, 1, 1)


def tiers(*rows: tuple[int, int | None, str, PriceFormat]) -> list[Tier]:
    return [
        Tier(n, D(start), None if end is None else D(end), D(price), fmt)
        for n, (start, end, price, fmt) in enumerate(rows, start=1)
    ]


def periods(
    start: date,
    billing_period: BillingPeriod = BillingPeriod.MONTH,
    *,
    bcd: int = 1,
    end: date | None = None,
    until: date = FAR,
    specific_months: int | None = None,
    count: int | None = None,
) -> list[ServicePeriod]:
    found = service_periods(start, end, billing_period, specific_months, bcd, until)
    return list(itertools.islice(found, count))


def spans(found: list[ServicePeriod]) -> list[tuple[date, date]]:
    return [(p.start, p.end) for p in found]


def full(start: date, end: date) -> ServicePeriod:
    return ServicePeriod(start, end, start, end, D(1))


# --- period_amount -------------------------------------------------------------------------------

ONE_TIER_FLAT = tiers((0, None, "10", FLAT))
ONE_TIER_UNIT = tiers((0, None, "2.50", UNIT))
ZUORA_STYLE = tiers((0, 10, "1", UNIT), (11, 20, "0.5", UNIT), (21, None, "0.25", UNIT))
EDGE_STYLE = tiers((0, 10, "1", UNIT), (10, 20, "0.5", UNIT), (20, None, "0.25", UNIT))
MIXED = tiers((1, 10, "50", FLAT), (11, 20, "80", FLAT), (21, None, "2", UNIT))


def test_flat_fee_ignores_quantity_even_zero() -> None:
    assert period_amount(ChargeModel.FLAT_FEE, D(5), ONE_TIER_FLAT) == D(10)
    assert period_amount(ChargeModel.FLAT_FEE, D(0), ONE_TIER_FLAT) == D(10)


def test_per_unit_is_price_times_quantity() -> None:
    assert period_amount(ChargeModel.PER_UNIT, D(4), ONE_TIER_UNIT) == D("10.00")
    assert period_amount(ChargeModel.PER_UNIT, D("1.5"), ONE_TIER_UNIT) == D("3.75")
    assert period_amount(ChargeModel.PER_UNIT, D(0), ONE_TIER_UNIT) == 0


@pytest.mark.parametrize("style", [ZUORA_STYLE, EDGE_STYLE], ids=["zuora", "edge"])
@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        ("0", "0"),
        ("1", "1"),
        ("10", "10"),
        ("10.5", "10.25"),
        ("15", "12.5"),
        ("20", "15"),
        ("21", "15.25"),
        ("25", "16.25"),
    ],
)
def test_tiered_per_unit_sums_each_tiers_units(
    style: list[Tier], quantity: str, amount: str
) -> None:
    assert period_amount(ChargeModel.TIERED, D(quantity), style) == D(amount)


@pytest.mark.parametrize(
    ("quantity", "amount"), [("0", "0"), ("1", "50"), ("10", "50"), ("11", "130"), ("22", "134")]
)
def test_tiered_flat_fee_tier_adds_its_price_once_when_reached(quantity: str, amount: str) -> None:
    assert period_amount(ChargeModel.TIERED, D(quantity), MIXED) == D(amount)


@pytest.mark.parametrize("style", [ZUORA_STYLE, EDGE_STYLE], ids=["zuora", "edge"])
@pytest.mark.parametrize(
    ("quantity", "amount"),
    [("0", "0"), ("1", "1"), ("10", "10"), ("10.5", "5.25"), ("11", "5.5"), ("25", "6.25")],
)
def test_volume_prices_all_units_at_the_containing_tier(
    style: list[Tier], quantity: str, amount: str
) -> None:
    assert period_amount(ChargeModel.VOLUME, D(quantity), style) == D(amount)


@pytest.mark.parametrize(("quantity", "amount"), [("0", "0"), ("7", "50"), ("11", "80")])
def test_volume_flat_fee_tier_is_its_price(quantity: str, amount: str) -> None:
    volume = tiers((0, 10, "50", FLAT), (11, None, "80", FLAT))
    assert period_amount(ChargeModel.VOLUME, D(quantity), volume) == D(amount)


@pytest.mark.parametrize(
    "bad",
    [
        tiers((11, 20, "1", UNIT), (0, 10, "1", UNIT)),  # unsorted
        tiers((0, 10, "1", UNIT), (12, None, "1", UNIT)),  # gap
        tiers((0, None, "1", UNIT), (11, None, "1", UNIT)),  # open tier not last
        tiers((5, None, "1", UNIT)),  # first tier leaves units unpriced
        tiers((0, 10, "1", UNIT), (10, 10, "1", UNIT)),  # empty tier
    ],
)
def test_malformed_tiers_are_rejected(bad: list[Tier]) -> None:
    for model in (ChargeModel.TIERED, ChargeModel.VOLUME):
        with pytest.raises(AssertionError):
            period_amount(model, D(1), bad)


def test_quantity_above_the_last_tier_or_negative_is_rejected() -> None:
    bounded = tiers((0, 10, "1", UNIT))
    with pytest.raises(AssertionError):
        period_amount(ChargeModel.VOLUME, D(11), bounded)
    with pytest.raises(AssertionError):
        period_amount(ChargeModel.TIERED, D(11), bounded)
    with pytest.raises(AssertionError):
        period_amount(ChargeModel.PER_UNIT, D(-1), ONE_TIER_UNIT)


@given(st.decimals(min_value=0, max_value=10_000, places=2))
def test_both_tier_styles_price_alike(quantity: Decimal) -> None:
    for model in (ChargeModel.TIERED, ChargeModel.VOLUME):
        assert period_amount(model, quantity, ZUORA_STYLE) == period_amount(
            model, quantity, EDGE_STYLE
        )


# --- monthly_amount ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("billing_period", "specific_months", "amount", "mrr"),
    [
        (BillingPeriod.MONTH, None, "100", "100"),
        (BillingPeriod.QUARTER, None, "300", "100"),
        (BillingPeriod.SEMI_ANNUAL, None, "600", "100"),
        (BillingPeriod.ANNUAL, None, "1200", "100"),
        (BillingPeriod.SPECIFIC_MONTHS, 2, "90", "45"),
        (BillingPeriod.SPECIFIC_MONTHS, 18, "1800", "100"),
        (BillingPeriod.WEEK, None, "140", "600"),
        (BillingPeriod.ANNUAL, None, "100", "8.333333333"),
        (BillingPeriod.QUARTER, None, "0.02", "0.006666667"),  # half up, not half even
        (BillingPeriod.WEEK, None, "1", "4.285714286"),
        (BillingPeriod.MONTH, None, "0", "0"),
    ],
)
def test_mrr_normalises_to_a_month_at_nine_places(
    billing_period: BillingPeriod, specific_months: int | None, amount: str, mrr: str
) -> None:
    result = monthly_amount(billing_period, specific_months, D(amount))
    assert result == D(mrr)
    assert result.as_tuple().exponent == -9


def test_mrr_rounds_half_up() -> None:
    # 0.0000000005 per month is exactly half of the last place.
    assert monthly_amount(BillingPeriod.MONTH, None, D("0.0000000005")) == D("0.000000001")
    assert monthly_amount(BillingPeriod.MONTH, None, D("0.0000000015")) == D("0.000000002")


# --- add_months ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "bcd", "expected"),
    [
        (date(2026, 1, 31), 1, 31, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, 31, date(2028, 2, 29)),
        (date(2026, 2, 28), 1, 31, date(2026, 3, 31)),
        (date(2026, 1, 31), 3, 31, date(2026, 4, 30)),
        (date(2026, 1, 15), 1, 15, date(2026, 2, 15)),
        (date(2026, 11, 1), 3, 1, date(2027, 2, 1)),
        (date(2026, 3, 31), -1, 31, date(2026, 2, 28)),
        (date(2026, 1, 1), -1, 1, date(2025, 12, 1)),
        (date(2026, 1, 10), 0, 30, date(2026, 1, 30)),
    ],
)
def test_add_months_keeps_the_bill_cycle_day_clamped(
    day: date, months: int, bcd: int, expected: date
) -> None:
    assert add_months(day, months, bcd) == expected


# --- service_periods -----------------------------------------------------------------------------


def test_monthly_bcd_1() -> None:
    assert spans(periods(date(2026, 1, 1), count=3)) == [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]
    assert all(p.proration == 1 for p in periods(date(2026, 1, 1), count=12))


def test_monthly_bcd_15() -> None:
    assert spans(periods(date(2026, 1, 15), bcd=15, count=2)) == [
        (date(2026, 1, 15), date(2026, 2, 14)),
        (date(2026, 2, 15), date(2026, 3, 14)),
    ]


@pytest.mark.parametrize(("year", "feb_end"), [(2026, 28), (2028, 29)])
def test_monthly_bcd_31_clamps_in_february_and_returns_to_the_31st(year: int, feb_end: int) -> None:
    assert spans(periods(date(year, 1, 31), bcd=31, count=4)) == [
        (date(year, 1, 31), date(year, 2, feb_end - 1)),
        (date(year, 2, feb_end), date(year, 3, 30)),
        (date(year, 3, 31), date(year, 4, 29)),
        (date(year, 4, 30), date(year, 5, 30)),
    ]


@pytest.mark.parametrize(
    ("billing_period", "specific_months", "ends"),
    [
        (BillingPeriod.QUARTER, None, [date(2026, 3, 31), date(2026, 6, 30)]),
        (BillingPeriod.SEMI_ANNUAL, None, [date(2026, 6, 30), date(2026, 12, 31)]),
        (BillingPeriod.ANNUAL, None, [date(2026, 12, 31), date(2027, 12, 31)]),
        (BillingPeriod.SPECIFIC_MONTHS, 2, [date(2026, 2, 28), date(2026, 4, 30)]),
        (BillingPeriod.WEEK, None, [date(2026, 1, 7), date(2026, 1, 14)]),
    ],
)
def test_longer_and_weekly_periods(
    billing_period: BillingPeriod, specific_months: int | None, ends: list[date]
) -> None:
    found = periods(date(2026, 1, 1), billing_period, specific_months=specific_months, count=2)
    assert [p.end for p in found] == ends
    assert found[1].start == ends[0] + timedelta(days=1)
    assert all(p.proration == 1 for p in found)


def test_weekly_periods_ignore_the_bill_cycle_day() -> None:
    found = periods(date(2026, 1, 7), BillingPeriod.WEEK, bcd=1, count=2)
    assert found == [
        full(date(2026, 1, 7), date(2026, 1, 13)),
        full(date(2026, 1, 14), date(2026, 1, 20)),
    ]


def test_mid_period_start_gives_a_partial_first_period() -> None:
    first, second = periods(date(2026, 1, 16), count=2)
    assert first == ServicePeriod(
        date(2026, 1, 16), date(2026, 1, 31), date(2026, 1, 1), date(2026, 1, 31), D(16) / D(31)
    )
    assert second == full(date(2026, 2, 1), date(2026, 2, 28))


def test_mid_period_start_bcd_31_in_february() -> None:
    first = periods(date(2026, 2, 15), bcd=31, count=1)[0]
    assert first == ServicePeriod(
        date(2026, 2, 15), date(2026, 2, 27), date(2026, 1, 31), date(2026, 2, 27), D(13) / D(28)
    )


def test_mid_period_start_quarterly_is_partial_up_to_the_first_bill_cycle_date() -> None:
    first, second = periods(date(2026, 2, 10), BillingPeriod.QUARTER, count=2)
    assert first == ServicePeriod(
        date(2026, 2, 10), date(2026, 2, 28), date(2025, 12, 1), date(2026, 2, 28), D(19) / D(90)
    )
    assert second == full(date(2026, 3, 1), date(2026, 5, 31))


def test_charge_end_mid_period_cuts_the_last_period() -> None:
    found = periods(date(2026, 1, 1), end=date(2026, 3, 16))
    assert spans(found)[-1] == (date(2026, 3, 1), date(2026, 3, 15))
    assert len(found) == 3
    assert found[-1].full_end == date(2026, 3, 31)
    assert found[-1].proration == D(15) / D(31)


def test_charge_end_on_a_boundary_or_at_the_start() -> None:
    assert spans(periods(date(2026, 1, 1), end=date(2026, 3, 1)))[-1] == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert periods(date(2026, 1, 1), end=date(2026, 1, 1)) == []


def test_charge_starting_and_ending_inside_one_period() -> None:
    found = periods(date(2026, 1, 10), end=date(2026, 1, 20))
    assert found == [
        ServicePeriod(
            date(2026, 1, 10), date(2026, 1, 19), date(2026, 1, 1), date(2026, 1, 31), D(10) / D(31)
        )
    ]


def test_until_is_exclusive_on_period_starts() -> None:
    assert len(periods(date(2026, 1, 1), until=date(2026, 3, 1))) == 2
    last = periods(date(2026, 1, 1), until=date(2026, 3, 2))[-1]
    assert last == full(date(2026, 3, 1), date(2026, 3, 31))
    assert periods(date(2026, 1, 1), until=date(2026, 1, 1)) == []


def test_one_call_yields_at_most_the_limit() -> None:
    start = date(2026, 1, 1)
    limit_until = start + timedelta(weeks=MAX_SERVICE_PERIODS)
    assert len(periods(start, BillingPeriod.WEEK, until=limit_until)) == MAX_SERVICE_PERIODS
    with pytest.raises(AssertionError):
        periods(start, BillingPeriod.WEEK, until=limit_until + timedelta(days=1))


# --- billable_periods ----------------------------------------------------------------------------

JAN, FEB, MAR = periods(date(2026, 1, 1), count=3)


@pytest.mark.parametrize(
    ("timing", "target", "billed"),
    [
        (ADVANCE, date(2025, 12, 31), []),
        (ADVANCE, date(2026, 1, 1), [JAN]),
        (ADVANCE, date(2026, 1, 31), [JAN]),
        (ADVANCE, date(2026, 2, 1), [JAN, FEB]),
        (ARREARS, date(2026, 1, 1), []),
        (ARREARS, date(2026, 1, 31), []),
        (ARREARS, date(2026, 2, 1), [JAN]),
        (ARREARS, date(2026, 2, 28), [JAN]),
        (ARREARS, date(2026, 3, 1), [JAN, FEB]),
    ],
)
def test_in_advance_bills_started_periods_in_arrears_completed_ones(
    timing: BillingTiming, target: date, billed: list[ServicePeriod]
) -> None:
    assert billable_periods([JAN, FEB, MAR], timing, target, None) == billed


@pytest.mark.parametrize("timing", [ADVANCE, ARREARS])
def test_charged_through_prevents_billing_twice(timing: BillingTiming) -> None:
    target = date(2026, 2, 15)
    first_run = billable_periods([JAN, FEB, MAR], timing, target, None)
    assert first_run
    charged_through = first_run[-1].end + timedelta(days=1)
    assert billable_periods([JAN, FEB, MAR], timing, target, charged_through) == []
    later = billable_periods([JAN, FEB, MAR], timing, date(2026, 4, 1), charged_through)
    assert later == [p for p in (FEB, MAR) if p not in first_run]


def test_billable_periods_stops_at_the_target_on_an_open_ended_charge() -> None:
    open_ended = service_periods(date(2026, 1, 1), None, BillingPeriod.MONTH, None, 1, FAR)
    assert billable_periods(open_ended, ADVANCE, date(2026, 2, 1), None) == [JAN, FEB]


# --- prorated_amount -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "proration", "currency", "expected"),
    [
        ("100", D(16) / D(31), "USD", "51.61"),
        ("10000", D(16) / D(31), "JPY", "5161"),
        ("10", D(16) / D(31), "KWD", "5.161"),
        ("0.25", D("0.5"), "USD", "0.13"),  # half up, not half even
        ("1", D("0.5"), "JPY", "1"),
        ("0.005", D(1), "KWD", "0.005"),
        ("99.99", D(1), "USD", "99.99"),
    ],
)
def test_prorated_amount_rounds_half_up_to_the_currency_scale(
    amount: str, proration: Decimal, currency: str, expected: str
) -> None:
    result = prorated_amount(D(amount), proration, currency)
    assert result == D(expected)
    assert str(result) == expected


# --- properties ----------------------------------------------------------------------------------

days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
billing_periods = st.sampled_from(list(BillingPeriod))
bill_cycle_days = st.integers(min_value=1, max_value=31)


def _specific(billing_period: BillingPeriod, months: int) -> int | None:
    return months if billing_period is BillingPeriod.SPECIFIC_MONTHS else None


@given(
    days,
    st.none() | st.integers(min_value=0, max_value=1500),
    billing_periods,
    st.integers(min_value=1, max_value=24),
    bill_cycle_days,
    st.integers(min_value=0, max_value=1500),
)
def test_periods_tile_the_charge_without_gaps_or_overlaps(
    start: date,
    end_days: int | None,
    billing_period: BillingPeriod,
    months: int,
    bcd: int,
    until_days: int,
) -> None:
    end = None if end_days is None else start + timedelta(days=end_days)
    until = start + timedelta(days=until_days)
    specific = _specific(billing_period, months)
    found = list(service_periods(start, end, billing_period, specific, bcd, until))
    stop = until if end is None else min(end, until)
    assert bool(found) == (start < stop)
    if not found:
        return
    assert found[0].start == start
    for previous, current in itertools.pairwise(found):
        assert current.start == previous.end + timedelta(days=1)
        assert current.full_start == previous.full_end + timedelta(days=1)
        assert current.full_start == current.start
    last = found[-1]
    assert last.start < stop
    assert last.end + timedelta(days=1) >= stop
    assert end is None or last.end < end
    for p in found:
        period_days = (p.end - p.start).days + 1
        assert p.proration == D(period_days) / D((p.full_end - p.full_start).days + 1)
        period_months = billing_period.months(specific)
        if period_months is None:
            assert p.full_end - p.full_start == timedelta(days=6)
        else:
            assert add_months(p.full_start, 0, bcd) == p.full_start
            assert add_months(p.full_start, period_months, bcd) == p.full_end + timedelta(days=1)


@given(days, bill_cycle_days)
def test_a_year_of_monthly_periods_from_a_bill_cycle_date_prorates_to_twelve(
    day: date, bcd: int
) -> None:
    start = add_months(day, 0, bcd)
    until = add_months(start, 12, bcd)
    found = periods(start, bcd=bcd, end=until, until=until)
    assert len(found) == 12
    assert sum(p.proration for p in found) == 12


@given(
    days,
    billing_periods,
    st.integers(min_value=1, max_value=24),
    bill_cycle_days,
    st.sampled_from(list(BillingTiming)),
    st.integers(min_value=0, max_value=800),
    st.integers(min_value=0, max_value=800),
)
def test_two_runs_with_charged_through_bill_what_one_run_bills(
    start: date,
    billing_period: BillingPeriod,
    months: int,
    bcd: int,
    timing: BillingTiming,
    first_days: int,
    more_days: int,
) -> None:
    specific = _specific(billing_period, months)
    first_target = start + timedelta(days=first_days)
    second_target = first_target + timedelta(days=more_days)
    until = second_target + timedelta(days=1)
    found = list(service_periods(start, None, billing_period, specific, bcd, until))
    first_run = billable_periods(found, timing, first_target, None)
    charged_through = first_run[-1].end + timedelta(days=1) if first_run else None
    second_run = billable_periods(found, timing, second_target, charged_through)
    assert first_run + second_run == billable_periods(found, timing, second_target, None)
