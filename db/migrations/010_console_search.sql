-- The finance console (SPEC 4.6, issue 14): every search and list it shows is served by an
-- index, so its pages stay fast at 10,000 customers and beyond.
--
-- Search is by prefix, case-insensitive: `lower(col) LIKE 'ana%'`. text_pattern_ops makes
-- a btree usable for LIKE prefixes whatever the database's collation (no extension needed,
-- so the embedded server of `dunning dev` and any managed PostgreSQL both have it).
CREATE INDEX customers_lower_id_idx ON customers (lower(id) text_pattern_ops);
CREATE INDEX customers_lower_name_idx ON customers (lower(name) text_pattern_ops);
CREATE INDEX customers_lower_email_idx ON customers (lower(email) text_pattern_ops);
CREATE INDEX invoices_lower_number_idx ON invoices (lower(number) text_pattern_ops);

-- Notifications by status, newest first (the console's list, one status at a time; read
-- backwards for created_at DESC, key DESC).
CREATE INDEX notifications_status_created_idx ON notifications (status, created_at, key);

-- The audit log filtered by actor or action, newest first.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);

-- A customer's payments by time (the console's timeline), reversed ones included.
CREATE INDEX payments_customer_received_idx ON payments (customer_id, received_at);
