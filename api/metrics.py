"""Metrics of the API itself; payment outcomes use the shared ``dunning_payments_total``."""

from __future__ import annotations

from prometheus_client import Counter

SIGNATURE_FAILURES = Counter(
    "dunning_webhook_signature_failures_total",
    "Webhook requests refused with 401 (missing, malformed, stale or wrong signature)",
)
