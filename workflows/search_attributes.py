"""Typed search attributes that make every workflow findable in the Temporal UI (SPEC 3)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
CUSTOMER_CLASS = SearchAttributeKey.for_keyword("CustomerClass")
INVOICE_NUMBER = SearchAttributeKey.for_keyword("InvoiceNumber")
COLLECTION_STATUS = SearchAttributeKey.for_keyword("CollectionStatus")
SERVICE_STATE = SearchAttributeKey.for_keyword("ServiceState")
DUE_DATE = SearchAttributeKey.for_datetime("DueDate")
# The customer is on hold (SPEC 2.11): its customer and invoice workflows say so.
ON_HOLD = SearchAttributeKey.for_bool("OnHold")

ALL = (CUSTOMER_ID, CUSTOMER_CLASS, INVOICE_NUMBER, COLLECTION_STATUS, SERVICE_STATE, DUE_DATE,
       ON_HOLD)


def typed(*pairs: tuple[SearchAttributeKey, object]) -> TypedSearchAttributes:
    """Search attributes to set when a workflow starts."""
    return TypedSearchAttributes([SearchAttributePair(k, v) for k, v in pairs])
