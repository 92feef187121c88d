"""SPEC 2.1: amounts are exact decimal strings at the edges, integer minor units inside."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import (
    MAX_MAJOR_UNITS,
    Currency,
    MoneyError,
    currency,
    format_amount,
    parse_amount,
    to_decimal,
)

USD = currency("USD")
JPY = currency("JPY")
BHD = currency("BHD")


def test_exponents_of_the_spec_currencies() -> None:
    assert (JPY.exponent, USD.exponent, currency("EUR").exponent) == (0, 2, 2)
    assert (currency("BRL").exponent, BHD.exponent, currency("KWD").exponent) == (2, 3, 3)
    assert currency("USD") == Currency("USD", 2)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("XYZ", "unknown currency 'XYZ'"),
        ("usd", "currency 'usd' must be written in upper case: 'USD'"),
        ("Usd", "currency 'Usd' must be written in upper case: 'USD'"),
        ("US", "currency 'US' is not a 3-letter ISO 4217 code"),
        ("USDT", "currency 'USDT' is not a 3-letter ISO 4217 code"),
        ("", "currency '' is not a 3-letter ISO 4217 code"),
        ("XAU", "unknown currency 'XAU'"),  # gold: no customer is billed in it
        ("HRK", "unknown currency 'HRK'"),  # withdrawn in 2023
    ],
)
def test_currency_refusals(code: str, message: str) -> None:
    with pytest.raises(MoneyError) as refused:
        currency(code)
    assert str(refused.value) == message


def test_currency_refuses_non_strings() -> None:
    with pytest.raises(MoneyError, match="3-letter ISO 4217 code"):
        currency(840)  # type: ignore[arg-type]


def test_money_error_is_a_value_error() -> None:
    # Callers at the edges (CLI, API) catch ValueError for every input problem.
    assert issubclass(MoneyError, ValueError)


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [
        ("15", USD, 1500),
        ("15.0", USD, 1500),
        ("15.00", USD, 1500),
        ("0.01", USD, 1),
        ("0", USD, 0),
        ("0.00", USD, 0),
        ("007.50", USD, 750),
        ("  15.00 ", USD, 1500),
        ("15", JPY, 15),
        ("1500", JPY, 1500),
        ("15", BHD, 15000),
        ("15.5", BHD, 15500),
        ("0.001", BHD, 1),
        ("1.2345", currency("CLF"), 12345),
        (str(MAX_MAJOR_UNITS), USD, MAX_MAJOR_UNITS * 100),
        (f"{MAX_MAJOR_UNITS}.000", BHD, MAX_MAJOR_UNITS * 1000),
    ],
)
def test_parse_amount_accepts(text: str, cur: Currency, minor: int) -> None:
    assert parse_amount(text, cur) == minor


@pytest.mark.parametrize(
    ("text", "cur", "message"),
    [
        # more decimals than the currency allows, counted as written
        ("10.123", USD, "amount '10.123' has 3 decimal places; USD allows 2"),
        ("10.100", USD, "amount '10.100' has 3 decimal places; USD allows 2"),
        ("15.0", JPY, "amount '15.0' has 1 decimal place; JPY allows 0"),
        ("15.5", JPY, "amount '15.5' has 1 decimal place; JPY allows 0"),
        ("1.2345", BHD, "amount '1.2345' has 4 decimal places; BHD allows 3"),
        # NaN and Infinity, any case, signed
        ("NaN", USD, "amount 'NaN' is not a number"),
        ("nan", USD, "amount 'nan' is not a number"),
        ("-NaN", USD, "amount '-NaN' is not a number"),
        ("sNaN", USD, "amount 'sNaN' is not a number"),
        ("Infinity", USD, "amount 'Infinity' is not a number"),
        ("-infinity", USD, "amount '-infinity' is not a number"),
        ("+Inf", USD, "amount '+Inf' is not a number"),
        ("inf", USD, "amount 'inf' is not a number"),
        # negative: reversals are their own operation
        (
            "-5.00",
            USD,
            "amount '-5.00' is negative; refunds and chargebacks are recorded as reversals "
            "of the original payment",
        ),
        # absurd magnitudes
        (
            f"{MAX_MAJOR_UNITS}.01",
            USD,
            f"amount '{MAX_MAJOR_UNITS}.01' exceeds the maximum of {MAX_MAJOR_UNITS} USD",
        ),
        (
            "9" * 5000,
            JPY,
            f"amount '{'9' * 5000}' exceeds the maximum of {MAX_MAJOR_UNITS} JPY",
        ),
        # exponent notation
        ("1e3", USD, "amount '1e3' uses exponent notation; write the digits out"),
        ("1.5E2", USD, "amount '1.5E2' uses exponent notation; write the digits out"),
        # thousands separators (and the decimal comma, which looks like one)
        (
            "1,000.00",
            USD,
            "amount '1,000.00' contains ','; use '.' as the decimal point and no thousands "
            "separators",
        ),
        (
            "10,50",
            USD,
            "amount '10,50' contains ','; use '.' as the decimal point and no thousands separators",
        ),
        (
            "1_000",
            USD,
            "amount '1_000' contains '_'; use '.' as the decimal point and no thousands separators",
        ),
        (
            "1 000",
            USD,
            "amount '1 000' contains ' '; use '.' as the decimal point and no thousands separators",
        ),
        # garbage
        ("", USD, "amount is empty"),
        ("   ", USD, "amount is empty"),
        ("abc", USD, "amount 'abc' is not a decimal number like 15.00"),
        ("$15", USD, "amount '$15' is not a decimal number like 15.00"),
        ("+15", USD, "amount '+15' is not a decimal number like 15.00"),
        (".5", USD, "amount '.5' is not a decimal number like 15.00"),
        ("5.", USD, "amount '5.' is not a decimal number like 15.00"),
        ("1.2.3", USD, "amount '1.2.3' is not a decimal number like 15.00"),
        ("0x10", JPY, "amount '0x10' is not a decimal number like 15"),
        ("١٥", USD, "amount '١٥' is not a decimal number like 15.00"),  # Arabic-Indic digits
        ("15.00\n1", BHD, "amount '15.00\n1' is not a decimal number like 15.000"),
    ],
)
def test_parse_amount_refuses(text: str, cur: Currency, message: str) -> None:
    with pytest.raises(MoneyError) as refused:
        parse_amount(text, cur)
    assert str(refused.value) == message


@pytest.mark.parametrize("value", [15, 15.0, Decimal("15.00"), None, b"15"])
def test_parse_amount_refuses_non_strings(value: object) -> None:
    with pytest.raises(MoneyError, match="must be a decimal string"):
        parse_amount(value, USD)  # type: ignore[arg-type]


def test_zero_refused_only_when_asked() -> None:
    assert parse_amount("0.00", USD) == 0
    with pytest.raises(MoneyError, match="must be greater than zero"):
        parse_amount("0.00", USD, allow_zero=False)
    assert parse_amount("0.01", USD, allow_zero=False) == 1


@pytest.mark.parametrize(
    ("minor", "cur", "text"),
    [
        (1500, USD, "15.00"),
        (-500, USD, "-5.00"),
        (1, USD, "0.01"),
        (-1, USD, "-0.01"),
        (0, USD, "0.00"),
        (15, JPY, "15"),
        (-15, JPY, "-15"),
        (15000, BHD, "15.000"),
        (1, BHD, "0.001"),
        (12345, currency("CLF"), "1.2345"),
    ],
)
def test_format_amount(minor: int, cur: Currency, text: str) -> None:
    assert format_amount(minor, cur) == text


def test_format_amount_refuses_floats() -> None:
    with pytest.raises(TypeError):
        format_amount(15.0, USD)  # type: ignore[arg-type]


def test_to_decimal_is_exact() -> None:
    assert to_decimal(1500, USD) == Decimal("15.00")
    assert str(to_decimal(1500, USD)) == "15.00"
    assert str(to_decimal(15, JPY)) == "15"
    assert str(to_decimal(-1, BHD)) == "-0.001"
    # Beyond Decimal's default 28-digit context precision (where scaleb() would round).
    huge = 10**40 + 1
    assert str(to_decimal(huge, USD)) == "1" + "0" * 37 + "0.01"


@pytest.mark.parametrize("cur", [JPY, USD, BHD], ids=lambda cur: cur.code)
@given(minor=st.integers(min_value=0, max_value=MAX_MAJOR_UNITS * 1000))
def test_round_trip(cur: Currency, minor: int) -> None:
    minor = min(minor, MAX_MAJOR_UNITS * 10**cur.exponent)
    text = format_amount(minor, cur)
    assert parse_amount(text, cur) == minor
    assert format_amount(parse_amount(text, cur), cur) == text
    assert to_decimal(minor, cur) == Decimal(text)
