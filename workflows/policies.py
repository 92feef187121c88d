"""Timeouts and retry policies for every activity, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Error types raised by activities that must never be retried.
INVALID_INPUT = "InvalidInput"
PERMANENT_MAIL = "PermanentMailError"
NOT_FOUND = "NotFound"

# Database transactions: short, retried until the database is back (SPEC: nothing lost).
LEDGER_TIMEOUT = timedelta(seconds=30)
LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=15),
    non_retryable_error_types=[INVALID_INPUT, NOT_FOUND],
)

# Mail: transient SMTP failures retry with backoff for up to three days; permanent ones
# are recorded as failed by the activity and not retried.
MAIL_TIMEOUT = timedelta(seconds=60)
MAIL_SCHEDULE_TO_CLOSE = timedelta(days=3)
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[PERMANENT_MAIL, INVALID_INPUT, NOT_FOUND],
)

# Provisioning hook (suspend/resume the service in the network).
PROVISIONING_TIMEOUT = timedelta(seconds=30)
PROVISIONING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[INVALID_INPUT],
)
