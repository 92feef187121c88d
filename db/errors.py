"""Errors the db layer raises on purpose; ``str(error)`` is a one-line message for the user.

All derive from ``DbError(ValueError)``: they mean "the request was refused and nothing was
written", never "the database failed" (those stay psycopg errors).
"""

from __future__ import annotations


class DbError(ValueError):
    """A request refused by the db layer; nothing was written."""


class UnknownClass(DbError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown customer class '{name}'")
        self.name = name


class UnknownCustomer(DbError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"unknown customer '{customer_id}'")
        self.customer_id = customer_id


class UnknownPayment(DbError):
    def __init__(self, processor: str, payment_id: str, detail: str = "") -> None:
        message = f"unknown payment '{payment_id}' of processor '{processor}'"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.processor = processor
        self.payment_id = payment_id


class ClassCurrencyLocked(DbError):
    def __init__(self, name: str, old: str, new: str) -> None:
        super().__init__(
            f"cannot change the currency of class '{name}' from {old} to {new}: "
            "its customers already have invoices, payments or subscriptions"
        )


class TokenReused(DbError):
    """An idempotency token came back with another kind of operation or customer."""

    def __init__(self, token: str, stored_kind: str, kind: str) -> None:
        super().__init__(
            f"operation token '{token}' was already used for {stored_kind}, not {kind}"
        )


class InvalidValue(DbError):
    """A value the schema would refuse, caught early to give a readable message."""
