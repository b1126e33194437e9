"""Money: `Decimal` end to end, PostgreSQL `NUMERIC` in storage, never float.

Amounts are accepted at most at the currency's minor-unit scale (ISO 4217) and rejected, not
rounded, beyond it: silently rounding a finance team's figure is worse than refusing it.
Every decimal a request carries (quantities, prices, amounts) is finite, below `MAX_ABS_AMOUNT`
in absolute value and has at most `MAX_DECIMAL_PLACES` places: the `NUMERIC` columns take any
size, so the bound is ours, chosen so that a price times a quantity stays exact and printable.
"""

from decimal import Decimal

# Active ISO 4217 codes. Minor units are 2 unless listed in _SCALE.
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG
    """.split()
)

_SCALE = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}

ZERO = Decimal(0)
MAX_ABS_AMOUNT = Decimal("1e15")
MAX_DECIMAL_PLACES = 9
_FINEST = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)


def currency_scale(currency: str) -> int:
    return _SCALE.get(currency, 2)


def decimal_places(amount: Decimal) -> int:
    """Places after the point, trailing zeros aside; exact at any length (`normalize` would
    round to the context's 28 digits first)."""
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def decimal_problem(value: Decimal) -> str | None:
    """Why `value` cannot be a quantity, price or amount at all, or None when it can."""
    if not value.is_finite():
        return "must be a finite number"
    if not -MAX_ABS_AMOUNT < value < MAX_ABS_AMOUNT:
        return f"must be less than {MAX_ABS_AMOUNT:f} in absolute value"
    # Below 10^15 the value has at most 24 digits at 9 places: quantizing is exact and cheap.
    if value.quantize(_FINEST) != value:
        return f"has more than {MAX_DECIMAL_PLACES} decimal places"
    return None


def amount_problem(amount: Decimal, currency: str) -> str | None:
    """Why `amount` is not a valid amount in `currency`, or None when it is."""
    if problem := decimal_problem(amount):
        return problem
    scale = currency_scale(currency)
    if decimal_places(amount) > scale:
        return f"has more than {scale} decimal places, the scale of {currency}"
    return None


def trimmed(amount: Decimal) -> Decimal:
    """A computed rate (MRR, kept at 9 places) without its trailing zeros: 10, not 10.000000000."""
    return amount.normalize() if amount else ZERO
