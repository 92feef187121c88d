"""Prometheus metrics of the worker and the API (SPEC 4.3 `/metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter("dunning_payments_total", "Payments received, by outcome",
                   ["outcome"])  # accepted | duplicate | unmatched | rejected | conflict
NOTIFICATIONS = Counter("dunning_notifications_total", "Notifications, by kind and outcome",
                        ["kind", "outcome"])  # sent | failed
SERVICE_CHANGES = Counter("dunning_service_changes_total", "Suspensions and resumptions",
                          ["state"])  # suspended | active
WORKFLOW_START_FAILURES = Counter("dunning_workflow_start_failures_total",
                                  "Invoice workflows that could not be started")
