"""Sending a notification from a workflow without ever letting mail block the lifecycle."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.ids import effects_task_queue
    from workflows import policies
    from workflows.notifications.payloads import (
        EXPIRE_NOTIFICATION,
        SEND_NOTIFICATION,
        SEND_NOTIFICATIONS,
        ExpireNotificationInput,
        ExpireNotificationResult,
        SendNotificationInput,
        SendNotificationResult,
        SendNotificationsInput,
        SendNotificationsResult,
    )

# Versioning marker of the retry-window fallback: histories recorded before it replay
# without the extra activity.
EXPIRE_PATCH = "expire-notifications"
# Mail and provisioning on their own task queue (issue 11); histories recorded before it
# scheduled them on the workflow's own queue.
EFFECTS_QUEUE_PATCH = "effects-task-queue"


def effects_queue() -> str:
    """The task queue of this workflow's mail and provisioning activities."""
    queue = workflow.info().task_queue
    return effects_task_queue(queue) if workflow.patched(EFFECTS_QUEUE_PATCH) else queue


async def deliver(notification: SendNotificationInput) -> None:
    """Send one mail; a mail that fails for good is recorded by the activity, never fatal.

    When the retry window itself ends the activity (its schedule-to-close timeout fired,
    e.g. the worker was down at the end, or the server would not start another attempt
    inside it), no attempt is left to mark the mail: a short activity then settles it
    (SPEC 2.6: ``pending`` -> ``failed`` with its last error, ``sending`` -> ``unknown``).
    """
    try:
        await workflow.execute_activity(
            SEND_NOTIFICATION,
            notification,
            result_type=SendNotificationResult,
            task_queue=effects_queue(),
            start_to_close_timeout=policies.MAIL_TIMEOUT,
            schedule_to_close_timeout=policies.MAIL_SCHEDULE_TO_CLOSE,
            retry_policy=policies.MAIL_RETRY,
        )
    except ActivityError as err:
        # Suspension and resumption never wait for mail (SPEC 2.6): log and go on.
        # No %-arguments: the SDK appends workflow info (ids may hold "%") to the message.
        workflow.logger.warning(f"notification {notification.key} not delivered: {err}")
        if _window_ended(err) and workflow.patched(EXPIRE_PATCH):
            await _expire(notification, err)


async def deliver_together(notifications: list[SendNotificationInput]) -> None:
    """Several mails of one outcome in one activity (one task round trip, not one each),
    each still settled on its own in the outbox; a single mail goes as ``deliver`` sends
    it. Never fatal, like ``deliver``."""
    if len(notifications) == 1:
        await deliver(notifications[0])
        return
    try:
        await workflow.execute_activity(
            SEND_NOTIFICATIONS,
            SendNotificationsInput(notifications=notifications),
            result_type=SendNotificationsResult,
            task_queue=effects_queue(),
            start_to_close_timeout=policies.MAIL_TIMEOUT,
            schedule_to_close_timeout=policies.MAIL_SCHEDULE_TO_CLOSE,
            retry_policy=policies.MAIL_RETRY,
        )
    except ActivityError as err:
        keys = ", ".join(n.key for n in notifications)
        workflow.logger.warning(f"notifications {keys} not all delivered: {err}")
        if _window_ended(err):
            for notification in notifications:
                await _expire(notification, err)


def _window_ended(err: ActivityError) -> bool:
    return isinstance(err.cause, ActivityTimeoutError) or err.retry_state == RetryState.TIMEOUT


async def _expire(notification: SendNotificationInput, err: ActivityError) -> None:
    last = err.cause
    if isinstance(last, ActivityTimeoutError) and last.cause is not None:
        last = last.cause  # the last attempt's own failure, when it had one
    reason = f"retry window ({policies.MAIL_SCHEDULE_TO_CLOSE}) ended undelivered"
    if last is not None and last.message:
        reason = f"{reason}: {last.message}"
    try:
        result = await workflow.execute_activity(
            EXPIRE_NOTIFICATION,
            ExpireNotificationInput(key=notification.key, kind=notification.kind,
                                    reason=reason),
            result_type=ExpireNotificationResult,
            task_queue=effects_queue(),
            start_to_close_timeout=policies.LEDGER_TIMEOUT,
            retry_policy=policies.LEDGER_RETRY,
        )
    except ActivityError as expire_err:
        workflow.logger.warning(f"notification {notification.key} not expired: {expire_err}")
        return
    workflow.logger.info(f"notification {notification.key} expired: {result.status}")
