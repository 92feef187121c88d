-- Termination (SPEC 2.9): a customer suspended without a break for its class's
-- terminate-after becomes ``terminated``: final for dunning until finance reactivates it.
ALTER TABLE customers DROP CONSTRAINT customers_service_state;
ALTER TABLE customers ADD CONSTRAINT customers_service_state
    CHECK (service_state IN ('active', 'suspended', 'terminated'));

-- A termination is recorded like a suspension, with its causes (the invoices unpaid then).
ALTER TABLE service_events DROP CONSTRAINT service_events_state;
ALTER TABLE service_events ADD CONSTRAINT service_events_state
    CHECK (state IN ('active', 'suspended', 'terminated'));

-- Its mail (SPEC 2.6): the outbox's kinds are domain/notifications/catalog.py's
-- NOTIFICATION_KINDS, which now include service_terminated.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind CHECK (kind IN (
    'invoice_issued', 'due_reminder', 'overdue', 'suspension_warning',
    'service_suspended', 'service_resumed', 'payment_received', 'late_fee_charged',
    'service_terminated'));
