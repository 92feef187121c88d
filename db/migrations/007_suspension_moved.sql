-- Working time moves an invoice's suspension (SPEC 2.10): from 007 on, suspend_at is the
-- time the suspension happens, S' (S = D + grace moved to the next start of working time),
-- which the warning mail and the status document show. When S was moved, the two columns
-- below keep S and why, so the status document can say so; both or neither.
ALTER TABLE invoices
    ADD COLUMN suspension_moved_from timestamptz,
    ADD COLUMN suspension_moved_why  text,
    ADD CONSTRAINT invoices_suspension_moved_both
        CHECK ((suspension_moved_from IS NULL) = (suspension_moved_why IS NULL)),
    -- S' is the next start of working time at or after S, and S is at or after D.
    ADD CONSTRAINT invoices_suspension_moved_forward
        CHECK (suspension_moved_from IS NULL
               OR (overdue_at <= suspension_moved_from AND suspension_moved_from < suspend_at)),
    ADD CONSTRAINT invoices_suspension_moved_why_present
        CHECK (btrim(suspension_moved_why) <> '');

COMMENT ON COLUMN invoices.suspend_at IS
    'When the suspension happens: S = D + grace, moved by working time (SPEC 2.10) to S''';
