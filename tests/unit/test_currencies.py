"""The ISO 4217 table: complete, ISO's exponents, and where it knowingly differs from CLDR."""

import re

from babel.numbers import get_currency_precision, list_currencies

from domain.currencies import ISO_4217_EXPONENTS

# ISO 4217 minor units where CLDR (babel) says 0: CLDR records how amounts are usually
# displayed, ISO what the currency can carry. The ledger follows ISO.
ISO_VS_CLDR = {
    "AFN": 2,
    "ALL": 2,
    "IQD": 3,
    "IRR": 2,
    "KPW": 2,
    "LAK": 2,
    "LBP": 2,
    "MGA": 2,
    "MMK": 2,
    "RSD": 2,
    "SOS": 2,
    "SYP": 2,
    "YER": 2,
}

EXCLUDED = {
    # metals, bond-market units, units of account, testing and "no currency"
    "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD",
    "XDR", "XSU", "XUA", "XAD", "XTS", "XXX",
    # withdrawn
    "ANG", "HRK", "CUC", "SLL", "ZWL", "MRO", "STD", "VEF", "BYR",
}  # fmt: skip


def test_table_is_complete() -> None:
    assert len(ISO_4217_EXPONENTS) >= 150
    expected = {"JPY": 0, "USD": 2, "EUR": 2, "BRL": 2, "BHD": 3, "KWD": 3, "JOD": 3}
    expected |= {"OMR": 3, "TND": 3, "LYD": 3, "IQD": 3, "CLF": 4, "UYW": 4}
    expected |= {"ISK": 0, "KRW": 0, "VND": 0, "CLP": 0, "XAF": 0, "XOF": 0, "XPF": 0}
    expected |= {"GBP": 2, "CHF": 2, "CNY": 2, "INR": 2, "MXN": 2, "ZAR": 2, "XCG": 2}
    expected |= {"SLE": 2, "VED": 2, "VES": 2, "ZWG": 2, "UYI": 0}
    assert {code: ISO_4217_EXPONENTS.get(code) for code in expected} == expected


def test_codes_are_well_formed() -> None:
    for code, exponent in ISO_4217_EXPONENTS.items():
        assert re.fullmatch(r"[A-Z]{3}", code), code
        assert exponent in (0, 2, 3, 4), code
    assert list(ISO_4217_EXPONENTS) == sorted(ISO_4217_EXPONENTS)


def test_excluded_codes_are_absent() -> None:
    assert EXCLUDED.isdisjoint(ISO_4217_EXPONENTS)


def test_every_code_is_known_to_babel() -> None:
    # babel's list includes historic codes; every current ISO code must be among them.
    assert set(ISO_4217_EXPONENTS) <= set(list_currencies())


def test_exponents_match_babel_except_known_differences() -> None:
    cldr = {code: get_currency_precision(code) for code in ISO_4217_EXPONENTS}
    differences = {
        code: exponent for code, exponent in ISO_4217_EXPONENTS.items() if cldr[code] != exponent
    }
    assert differences == ISO_VS_CLDR
    # If CLDR ever catches up with ISO on one of these, this list must shrink with it.
    assert all(cldr[code] == 0 for code in ISO_VS_CLDR)
