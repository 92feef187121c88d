"""Money: currencies, parsing and formatting of amounts (SPEC 2.1).

Inside Dunning an amount is an ``int`` of minor units of the customer's currency (cents for
USD, yen for JPY, fils for BHD). Decimal strings exist only at the edges: this module turns
them into minor units (``parse_amount``) and back (``format_amount``). No float is ever
involved, so no amount is ever rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from domain.currencies import ISO_4217_EXPONENTS

# Anything above this many major units is a typo or an attack, not a telecom bill (SPEC 2.1).
MAX_MAJOR_UNITS = 10**12


class MoneyError(ValueError):
    """An amount or currency was refused; ``str(error)`` is a one-line message for the user."""


@dataclass(frozen=True)
class Currency:
    """An ISO 4217 currency; ``exponent`` is the number of decimal places it allows."""

    code: str
    exponent: int

    def __post_init__(self) -> None:
        # Constructed directly from stored rows too, so keep the invariant checked here.
        if not isinstance(self.exponent, int) or isinstance(self.exponent, bool):
            raise TypeError(f"currency exponent must be an int, got {self.exponent!r}")
        if self.exponent < 0:
            raise ValueError(f"currency exponent must be >= 0, got {self.exponent}")


def currency(code: str) -> Currency:
    """The currency for an upper-case ISO 4217 code such as ``"USD"``."""
    if not isinstance(code, str):
        raise MoneyError(f"currency must be a 3-letter ISO 4217 code, got {code!r}")
    if not re.fullmatch(r"[A-Za-z]{3}", code):
        raise MoneyError(f"currency '{code}' is not a 3-letter ISO 4217 code")
    # Codes are compared as written everywhere (database, payloads, webhook bodies), so a
    # silent upper-casing here would let 'usd' and 'USD' become two different currencies.
    if code != code.upper():
        raise MoneyError(f"currency '{code}' must be written in upper case: '{code.upper()}'")
    if code not in ISO_4217_EXPONENTS:
        raise MoneyError(f"unknown currency '{code}'")
    return Currency(code=code, exponent=ISO_4217_EXPONENTS[code])


# One or more ASCII digits, optionally a point and one or more digits. ``[0-9]`` rather than
# ``\d`` because ``\d`` also matches Arabic-Indic and other Unicode digits.
_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_NOT_A_NUMBER = re.compile(r"[+-]?(?:s?nan|inf|infinity)", re.IGNORECASE)
_SEPARATORS = (",", "_", " ", "'", "\u00a0", "\u202f")


def parse_amount(text: str, cur: Currency, *, allow_zero: bool = True) -> int:
    """Parse a decimal string such as ``"15.00"`` into integer minor units of ``cur``.

    Refuses, with a MoneyError fit to show the user: non-strings, empty input, NaN and
    Infinity, negative amounts, exponent notation, thousands separators, more decimal
    places than the currency has (counted as written: "10.100" is refused for USD), more
    than MAX_MAJOR_UNITS, and zero when ``allow_zero`` is False.
    """
    if not isinstance(text, str):
        # A float would already have lost exactness before reaching us: refuse it outright.
        raise MoneyError(f"amount must be a decimal string such as '15.00', got {text!r}")
    amount = text.strip()
    if not amount:
        raise MoneyError("amount is empty")
    _refuse_non_decimal_forms(text, amount)
    match = _DECIMAL.fullmatch(amount)
    if match is None:
        raise MoneyError(f"amount '{text}' is not a decimal number like {_example(cur)}")
    whole, fraction = match["whole"], match["fraction"] or ""
    if len(fraction) > cur.exponent:
        raise MoneyError(
            f"amount '{text}' has {_places(len(fraction))}; {cur.code} allows {cur.exponent}"
        )
    # Leading zeros are harmless ("007.50"); drop them before the size check and before
    # int(), which refuses strings of more than 4300 digits.
    whole = whole.lstrip("0") or "0"
    if len(whole) > len(str(MAX_MAJOR_UNITS)):
        raise _too_large(text, cur)
    minor = int(whole) * 10**cur.exponent + int(fraction.ljust(cur.exponent, "0") or "0")
    if minor > MAX_MAJOR_UNITS * 10**cur.exponent:
        raise _too_large(text, cur)
    if minor == 0 and not allow_zero:
        raise MoneyError(f"amount '{text}' must be greater than zero")
    return minor


def _refuse_non_decimal_forms(text: str, amount: str) -> None:
    """Name the usual mistakes precisely instead of a generic 'not a number'."""
    if _NOT_A_NUMBER.fullmatch(amount):
        raise MoneyError(f"amount '{text}' is not a number")
    if amount.startswith("-"):
        raise MoneyError(
            f"amount '{text}' is negative; refunds and chargebacks are recorded as "
            "reversals of the original payment"
        )
    if "e" in amount.lower():
        raise MoneyError(f"amount '{text}' uses exponent notation; write the digits out")
    for separator in _SEPARATORS:
        if separator in amount:
            raise MoneyError(
                f"amount '{text}' contains {separator!r}; use '.' as the decimal point "
                "and no thousands separators"
            )


def _too_large(text: str, cur: Currency) -> MoneyError:
    return MoneyError(f"amount '{text}' exceeds the maximum of {MAX_MAJOR_UNITS} {cur.code}")


def _places(count: int) -> str:
    return "1 decimal place" if count == 1 else f"{count} decimal places"


def _example(cur: Currency) -> str:
    return format_amount(1500 * 10**cur.exponent // 100, cur)


def format_amount(minor: int, cur: Currency) -> str:
    """Minor units as a plain decimal string: ``"15.00"``, ``"-5.00"``, JPY ``"15"``.

    Always the currency's full number of decimals, no grouping, ``-`` for negatives (a
    balance can be negative when the customer has credit). Locale formatting is the
    caller's business (babel, on ``to_decimal``).
    """
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise TypeError(f"minor units must be an int, got {minor!r}")
    sign = "-" if minor < 0 else ""
    if cur.exponent == 0:
        return f"{sign}{abs(minor)}"
    major, rest = divmod(abs(minor), 10**cur.exponent)
    return f"{sign}{major}.{rest:0{cur.exponent}d}"


def to_decimal(minor: int, cur: Currency) -> Decimal:
    """The exact Decimal of an amount, e.g. ``Decimal("15.00")``, for locale formatting."""
    # Built from the string rather than by Decimal arithmetic, which rounds to the context
    # precision (28 digits) and would make this exactness depend on global state.
    return Decimal(format_amount(minor, cur))
