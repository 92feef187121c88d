-- The late fee's mail (SPEC 2.9, 2.6): the outbox's kinds are domain/notifications/
-- catalog.py's NOTIFICATION_KINDS, which now include late_fee_charged.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind CHECK (kind IN (
    'invoice_issued', 'due_reminder', 'overdue', 'suspension_warning',
    'service_suspended', 'service_resumed', 'payment_received', 'late_fee_charged'));
