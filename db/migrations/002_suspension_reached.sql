-- The instant an invoice's workflow reached its suspension time S (SPEC 2.4, 2.5).
-- Recorded by the InvoiceWorkflow that owns the timer, so the customer-level decision
-- ("some invoice past S with status collect") never depends on another workflow's clock.
ALTER TABLE invoices ADD COLUMN suspension_reached_at timestamptz;
