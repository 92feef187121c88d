"""Request and response bodies of the HTTP API (SPEC 4.3), with their OpenAPI examples.

Field rules live here; money rules live in ``domain.money`` and are only *called* here. A
payment's amount, currency and received_at are checked by ``ApplyPayment.build``
(domain/ledger/payments.py) only, whose refusals name their field (api.deps.invalid).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    model_validator,
)

# C0 and C1 control characters and DEL are refused in identifiers (log and header injection,
# invisible differences between ids); at least one visible character is required.
_NO_CONTROL = r"[^\x00-\x1f\x7f-\x9f]"
_VISIBLE = r"[^\x00-\x20\x7f-\x9f]"
IDENTIFIER_PATTERN = rf"^{_NO_CONTROL}*{_VISIBLE}{_NO_CONTROL}*$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
MAX_IDENTIFIER = 200


def _printable(value: str) -> str:
    # A validator rather than Field(pattern=...): the error then reads as a sentence.
    # fullmatch: with match, '$' would also accept a trailing newline.
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError("must contain a visible character and no control characters")
    return value


Printable = AfterValidator(_printable)


def _text(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length,
                 json_schema_extra={"pattern": IDENTIFIER_PATTERN})


Identifier = Annotated[StrictStr, _text(MAX_IDENTIFIER), Printable]
Reason = Annotated[StrictStr, _text(500), Printable]


def path_segment(description: str) -> Any:
    """A path parameter under the same rules as ``Identifier``: use it as
    ``Annotated[str, path_segment("..."), Printable]``."""
    return Path(min_length=1, max_length=MAX_IDENTIFIER, description=description,
                json_schema_extra={"pattern": IDENTIFIER_PATTERN})


def _when_text(value: object) -> object:
    # A number would be taken as unix seconds by a datetime field; we want the offset spelt.
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date, or date-time with offset, as a string")
    return value


# A payment's received_at: only its type here; ApplyPayment.build parses it, once, in the
# customer's class time zone.
WhenText = Annotated[StrictStr, BeforeValidator(_when_text), WithJsonSchema({
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
})]


class _Strict(BaseModel):
    # A misspelt optional field ("recieved_at") must not be silently dropped from a payment.
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- payments
class PaymentIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "payment_id": "pay_01J9Z3", "processor": "acme-pay", "customer_id": "c1",
        "amount": "15.00", "currency": "USD", "received_at": "2026-07-02T09:30:00+00:00",
    }]})

    payment_id: Identifier
    processor: Identifier
    customer_id: Identifier
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$",
                                         description="ISO 4217 code, upper case")]
    # A string, never a JSON number: a float has already lost exactness when it is parsed.
    amount: Annotated[StrictStr, Field(
        min_length=1, max_length=40,
        description="Decimal string with at most the currency's decimals, e.g. \"15.00\" "
                    "(USD), \"1500\" (JPY), \"1.250\" (BHD); > 0 and <= 10^12.")]
    received_at: Annotated[WhenText | None, Field(
        description="ISO 8601 date-time with offset, or a date (the start of that day in "
                    "the customer's class time zone); absent: when Dunning applies it",
        examples=["2026-07-02T09:30:00+00:00", "2026-07-02T07:30:00Z", "2026-07-02"])] = None
    # Amount, currency and received_at are checked by ApplyPayment.build
    # (domain/ledger/payments.py), the one place; its refusal names the field (api.deps.invalid).


class PaymentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "accepted", "processor": "acme-pay", "payment_id": "pay_01J9Z3"}]})

    status: Literal["accepted", "duplicate", "unmatched"] = Field(
        description="accepted: applied to the customer's ledger; duplicate: this exact "
                    "payment was received before; unmatched: customer unknown, stored for "
                    "finance")
    processor: str
    payment_id: str


class ReversalIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "chargeback"}, {}]})

    reason: Reason | None = None


class ReversalOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "reversed", "processor": "acme-pay", "payment_id": "pay_01J9Z3"}]})

    status: Literal["reversed", "already_reversed"]
    processor: str
    payment_id: str


# ----------------------------------------------------------------------------- customers
class SuspensionMoved(BaseModel):
    from_: str = Field(alias="from", description="S = D + grace, ISO 8601 instant, UTC")
    why: str

    model_config = ConfigDict(populate_by_name=True)


class InvoiceStatus(BaseModel):
    number: str
    issued_at: str = Field(description="ISO 8601 instant, UTC")
    due_date: str = Field(description="as given: a date or an ISO 8601 instant with offset")
    amount_due: str
    remaining: str
    collection_status: Literal["collect", "do_not_collect"]
    payment_status: Literal["unpaid", "partially_paid", "paid"]
    overdue: bool
    suspension_at: str | None = Field(
        default=None, description="ISO 8601 instant, UTC: when the suspension happens (S', "
                                  "SPEC 2.10: S = D + grace moved by working time)")
    suspension_moved: SuspensionMoved | None = Field(
        default=None, description="S and why, when working time moved the suspension")
    late_fee: str | None = Field(
        default=None, description="the late fee charged on it and not waived (SPEC 2.9), "
                                  "part of its remaining")


class HoldStatus(BaseModel):
    """A customer's hold (SPEC 2.11)."""

    until: str | None = Field(description="ISO 8601 instant; null: until released")
    reason: str
    actor: str
    placed_at: str
    resume: bool = Field(description="placed with resume: a suspended service resumed")


class CustomerStatus(BaseModel):
    """The status document of SPEC 4.2 (same as ``dunning status ID --json``)."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [{
        "customer_id": "c1", "class": "residential", "currency": "USD",
        "service_state": "active", "balance": "5.00",
        "invoices": [{"number": "INV-06", "issued_at": "2026-06-01T00:00:00+00:00",
                      "due_date": "2026-06-30", "amount_due": "20.00", "remaining": "5.00",
                      "collection_status": "do_not_collect",
                      "payment_status": "partially_paid", "overdue": True}],
    }]})

    customer_id: str
    class_name: str = Field(alias="class")
    currency: str
    service_state: Literal["active", "suspended", "terminated"]
    balance: str = Field(description="decimal string; negative when the customer has credit")
    hold: HoldStatus | None = Field(default=None, description=(
        "the hold in force (SPEC 2.11), null when the customer is not on hold"))
    invoices: list[InvoiceStatus]


# ----------------------------------------------------------------------------- re-runs
class RerunIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"class_name": "residential", "dry_run": True, "reason": "threshold 10 -> 15"},
        {"customer_id": "c1", "dry_run": False, "reason": "after manual correction"}]})

    class_name: Identifier | None = None
    customer_id: Identifier | None = None
    dry_run: StrictBool = False
    reason: Reason

    @model_validator(mode="after")
    def _one_scope(self) -> Self:
        if (self.class_name is None) == (self.customer_id is None):
            raise ValueError("give exactly one of class_name and customer_id")
        return self


class InvoiceChangeOut(BaseModel):
    number: str
    before_status: str | None
    after_status: str
    remaining: str


class CustomerRerunResult(BaseModel):
    customer_id: str
    dry_run: bool
    changes: list[InvoiceChangeOut]
    service_before: str
    service_after: str


class RerunOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"workflow_id": "rerun-class-residential-20260702T093000000000Z", "dry_run": False,
         "done": False, "scanned": 0, "changed_customers": 0, "results": []}]})

    workflow_id: str = Field(description="the RerunWorkflow, to follow in the Temporal UI")
    dry_run: bool
    done: bool = Field(description="false: still running (see the workflow)")
    scanned: int
    changed_customers: int
    results: list[CustomerRerunResult] = Field(
        description="customers whose statuses or service would change / changed")


# ----------------------------------------------------------------------------- misc
class Problem(BaseModel):
    """Every error except 422 validation errors (those use FastAPI's field-error list)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "unknown customer 'c9'"}]})

    detail: str


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ok", "database": "ok", "temporal": "ok"}]})

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    temporal: Literal["ok", "unavailable"]


def problem(description: str, example: str | None = None) -> dict[str, Any]:
    """A ``responses=`` entry for an error answered with ``Problem``."""
    entry: dict[str, Any] = {"model": Problem, "description": description}
    if example is not None:
        entry["content"] = {"application/json": {"example": {"detail": example}}}
    return entry



def validation(description: str) -> dict[str, Any]:
    """A ``responses=`` entry for 422 keeping FastAPI's field-error schema (an entry
    without content would replace it with nothing)."""
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}


# ------------------------------------------------------------------------------ late fees
class FeeWaiverIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "goodwill: first late payment in five years"}]})

    reason: Reason | None = None


class FeeWaiverOut(BaseModel):
    """``waived``; ``not_charged`` and ``already_waived`` change nothing."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "waived", "customer_id": "c1", "invoice": "INV-06", "fee": "0.40",
        "currency": "BRL", "balance": "9.60", "service_state": "active"}]})

    status: Literal["waived", "not_charged", "already_waived"]
    customer_id: str
    invoice: str
    fee: str = Field(description="the fee's amount (decimal string, class currency)")
    currency: str
    balance: str = Field(description="the customer's balance after the waiver")
    service_state: Literal["active", "suspended", "terminated"]


# ------------------------------------------------------------------------------- holds
class HoldIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "disputed invoice INV-06", "until": "2026-07-15", "resume": True},
        {"reason": "customer in hospital"}]})

    reason: Reason
    until: str | None = Field(default=None, description=(
        "a date (midnight in the class's time zone) or an ISO 8601 date-time with its "
        "offset; absent: until released"))
    resume: StrictBool = Field(default=False, description=(
        "a suspended customer resumes at once (reason \"hold\")"))


class HoldReleaseIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "dispute settled"}]})

    reason: Reason | None = None


class HoldOut(BaseModel):
    """``placed`` or ``replaced``; ``released``; ``not_held`` changes nothing."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "placed", "customer_id": "c1", "service_state": "active",
        "hold": {"until": "2026-07-15T03:00:00+00:00", "reason": "disputed invoice",
                 "actor": "ana", "placed_at": "2026-07-01T12:00:00+00:00",
                 "resume": True}}]})

    status: Literal["placed", "replaced", "released", "not_held"]
    customer_id: str
    hold: HoldStatus | None
    service_state: Literal["active", "suspended", "terminated"]

