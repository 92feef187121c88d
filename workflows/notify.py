"""Sending a notification from a workflow without ever letting mail block the lifecycle."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import policies
    from workflows.payloads import SEND_NOTIFICATION, SendNotificationInput, SendNotificationResult


async def deliver(notification: SendNotificationInput) -> None:
    """Send one mail; a mail that fails for good is recorded by the activity, never fatal."""
    try:
        await workflow.execute_activity(
            SEND_NOTIFICATION,
            notification,
            result_type=SendNotificationResult,
            start_to_close_timeout=policies.MAIL_TIMEOUT,
            schedule_to_close_timeout=policies.MAIL_SCHEDULE_TO_CLOSE,
            retry_policy=policies.MAIL_RETRY,
        )
    except ActivityError as err:
        # Suspension and resumption never wait for mail (SPEC 2.6): log and go on.
        # No %-arguments: the SDK appends workflow info (ids may hold "%") to the message.
        workflow.logger.warning(f"notification {notification.key} not delivered: {err}")
