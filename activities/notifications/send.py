"""The mail activity: build the notification from the database, record it, deliver it once.

The first attempt freezes the content in the outbox (key, sender, context); a retry or a
re-run finds the row and only delivers what is not sent yet (SPEC 2.6, at most once). A
transient failure whose next retry would fall past the retry window ends the mail
``failed`` with its last error; an outcome the outbox cannot know is returned ``unknown``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.notifications import outbox
from activities.notifications.errors import (
    MessageBuildError,
    PermanentMailError,
    TransientMailError,
)
from activities.notifications.mailer import Mailer
from activities.notifications.message import Sender, sender_for
from activities.notifications.render import build_context, choose_language
from db.collection.invoice_rows import get_invoice
from db.customers import get_customer_with_class
from db.ledger.fold import fee_of
from db.ledger.payments import get_payment
from db.rows import ClassRow, CustomerRow
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


class MailActivities:
    """Holds the connection pool, the pooled SMTP mailer and the company's default sender."""

    def __init__(self, pool: AsyncConnectionPool, mailer: Mailer, company: Sender) -> None:
        self.pool = pool
        self.mailer = mailer
        self.company = company

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, input: SendNotificationInput) -> SendNotificationResult:
        try:
            return await self._send(input)
        except TransientMailError as err:
            raise ApplicationError(f"SMTP not available: {err}", type="TransientMailError") \
                from None

    @activity.defn(name=SEND_NOTIFICATIONS)
    async def send_notifications(self, input: SendNotificationsInput
                                 ) -> SendNotificationsResult:
        """Each mail as ``send_notification`` would send it, one after the other; one
        that cannot be sent for good is answered ``failed`` and does not stop the others.
        If any is held up by a transient failure, the attempt fails after trying all of
        them, and the retry delivers only what is not settled yet (the outbox)."""
        results: list[SendNotificationResult] = []
        transient: TransientMailError | None = None
        for notification in input.notifications:
            try:
                results.append(await self._send(notification))
            except TransientMailError as err:
                transient = err
            except ApplicationError as err:
                results.append(SendNotificationResult(key=notification.key, status="failed",
                                                      error=err.message))
        if transient is not None:
            raise ApplicationError(f"SMTP not available: {transient}",
                                   type="TransientMailError") from None
        return SendNotificationsResult(results=results)

    async def _send(self, input: SendNotificationInput) -> SendNotificationResult:
        """Record (first attempt) and deliver one mail. A permanent failure, bad data or
        the end of the retry window raise a non-retryable ApplicationError (the mail is
        then ``failed``); a transient one raises TransientMailError."""
        async with self.pool.connection() as conn:
            existing = await outbox.get(conn, input.key)
            done = outbox.settled(existing) if existing is not None else None
            if done is not None:
                # A retry or re-run of a settled mail: nothing to claim, nothing to send.
                return SendNotificationResult(key=input.key, status=done.status,
                                              message_id=done.message_id, error=done.error)
            if existing is None:
                try:
                    await outbox.record(conn, await self._draft(conn, input))
                except MessageBuildError as err:
                    # Bad data (e.g. CR/LF in a name): nothing recorded, nothing sent.
                    metrics.NOTIFICATIONS.labels(input.kind, "failed").inc()
                    raise ApplicationError(str(err), type=policies.INVALID_INPUT,
                                           non_retryable=True) from None
        try:
            result = await outbox.deliver(self.pool, input.key, self.mailer, date=input.at)
        except (PermanentMailError, MessageBuildError) as err:
            metrics.NOTIFICATIONS.labels(input.kind, "failed").inc()
            raise ApplicationError(str(err), type=policies.PERMANENT_MAIL,
                                   non_retryable=True) from None
        except TransientMailError as err:
            if _retry_window_ends(activity.info()):
                # SPEC 2.6: undelivered when its window ends -> `failed` with the last error
                # (recorded by deliver), instead of `pending` forever.
                async with self.pool.connection() as conn:
                    await outbox.expire(conn, input.key, str(err))
                metrics.NOTIFICATIONS.labels(input.kind, "failed").inc()
                raise ApplicationError(f"retry window ended: {err}",
                                       type=policies.PERMANENT_MAIL, non_retryable=True) \
                    from None
            raise
        if result.status in ("sent", "unknown"):
            metrics.NOTIFICATIONS.labels(input.kind, result.status).inc()
        return SendNotificationResult(key=input.key, status=result.status,
                                      message_id=result.message_id, error=result.error)

    @activity.defn(name=EXPIRE_NOTIFICATION)
    async def expire_notification(self, input: ExpireNotificationInput
                                  ) -> ExpireNotificationResult:
        """The workflow's fallback when the send activity timed out (its retry window ended
        with no attempt left to mark the mail): ``pending`` -> ``failed`` keeping its last
        error, ``sending`` -> ``unknown``; settled rows are left as they are."""
        async with self.pool.connection() as conn:
            before = await outbox.get(conn, input.key)
            status = await outbox.expire(conn, input.key, input.reason)
        if before is not None and before.status != status and status in ("failed", "unknown"):
            metrics.NOTIFICATIONS.labels(input.kind, status).inc()
        return ExpireNotificationResult(key=input.key, status=status)

    async def _draft(self, conn: AsyncConnection,
                     input: SendNotificationInput) -> outbox.NotificationDraft:
        found = await get_customer_with_class(conn, input.customer_id)
        if found is None:
            raise ApplicationError(f"unknown customer {input.customer_id!r}",
                                   type=policies.NOT_FOUND, non_retryable=True)
        customer, klass = found
        language = choose_language(customer.language, klass.language)
        sender = sender_for(klass.from_name, klass.from_address, klass.reply_to, self.company)
        context = await self._context(conn, input, customer, klass, language, sender)
        return outbox.NotificationDraft(
            key=input.key, kind=input.kind, customer_id=customer.id, language=language,
            to_address=customer.email, sender=sender, context=context,
            invoice_number=input.invoice_number if _is_invoice_mail(input.kind) else None,
        )

    async def _context(self, conn: AsyncConnection, input: SendNotificationInput,
                       customer: CustomerRow, klass: ClassRow, language: str,
                       sender: Sender) -> dict[str, str]:
        invoice = (await get_invoice(conn, customer.id, input.invoice_number)
                   if input.invoice_number else None)
        payment_amount: int | None = None
        paid_at: datetime | None = None
        processor, payment_id = input.processor, input.payment_id
        if payment_id is None and input.payment_ref:
            # Mails scheduled before processor and payment id were separate fields.
            processor, _, payment_id = input.payment_ref.partition(":")
        if processor is not None and payment_id is not None:
            payment = await get_payment(conn, processor, payment_id)
            if payment is not None:
                payment_amount, paid_at = payment.amount, payment.received_at
        suspend_at = None
        if invoice is not None and _is_invoice_mail(input.kind):
            # Only a suspension that still lies ahead is announced.
            if input.at is None or invoice.suspend_at > input.at:
                suspend_at = invoice.suspend_at
        return build_context(
            language=language, currency_code=klass.currency, timezone=klass.timezone,
            customer_id=customer.id, customer_name=customer.name,
            company_name=sender.name or sender.address, contact_email=sender.contact,
            invoice_number=invoice.number if invoice else None,
            issued_at=invoice.issued_at if invoice else None,
            overdue_at=invoice.overdue_at if invoice else None,
            suspend_at=suspend_at,
            new_charges=invoice.new_charges if invoice else None,
            amount_due=invoice.amount_due if invoice else None,
            remaining=invoice.remaining if invoice else None,
            payment_amount=payment_amount, paid_at=paid_at, balance=customer.balance,
            fee_amount=(await fee_of(conn, invoice.id)
                        if invoice is not None and input.kind == "late_fee_charged" else None),
        )


def _retry_window_ends(info: activity.Info) -> bool:
    """Would the next retry of this attempt start too late to finish in the window?

    Server times only (``scheduled_time`` is the first attempt's): they stay right under
    the test server's time skipping, where the worker's clock does not. Margins of one
    start-to-close each for this attempt's end and the next attempt, so that no attempt
    is cut off by the schedule-to-close timeout mid-send.
    """
    window = info.schedule_to_close_timeout
    if not window:
        return False
    retry = info.retry_policy or policies.MAIL_RETRY
    # In float seconds: 2 s * 2**n overflows a timedelta after ~45 attempts.
    seconds = retry.initial_interval.total_seconds() * min(
        retry.backoff_coefficient ** max(info.attempt - 1, 0), 1e9)
    if retry.maximum_interval is not None:
        seconds = min(seconds, retry.maximum_interval.total_seconds())
    interval = timedelta(seconds=seconds)
    per_attempt = info.start_to_close_timeout or policies.MAIL_TIMEOUT
    next_end = info.current_attempt_scheduled_time + per_attempt + interval + per_attempt
    return next_end > info.scheduled_time + window


def _is_invoice_mail(kind: str) -> bool:
    return kind in ("invoice_issued", "due_reminder", "overdue", "suspension_warning",
                    "late_fee_charged")

