-- Invoices are never cancelled: no command ever set cancelled_at, so it is dropped with
-- the predicate of the partial indexes that carried it (SPEC 2.2 knows no cancellation;
-- a cancellation would be a ledger command of its own, with its own column).
DROP INDEX invoices_customer_live_idx;
DROP INDEX invoices_open_idx;
DROP INDEX invoices_collect_suspend_idx;
ALTER TABLE invoices DROP COLUMN cancelled_at;

-- The fold reads a customer's invoices oldest first.
CREATE INDEX invoices_customer_issued_idx ON invoices (customer_id, issued_at, number);
-- Open invoices (dashboards, re-runs, suspension sweeps).
CREATE INDEX invoices_open_idx ON invoices (customer_id, suspend_at) WHERE remaining > 0;
CREATE INDEX invoices_collect_suspend_idx ON invoices (suspend_at)
    WHERE collection_status = 'collect';
