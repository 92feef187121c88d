-- Hold (SPEC 2.11): finance pauses a customer's collection until a time or until released.
-- The hold in force is stored on the customer (the service decision reads it under the
-- customer's lock); it ends when released or when the customer's workflow's timer for
-- ``hold_until`` fires (no database clock is compared). Placing and releasing are audited
-- (customer.hold, customer.hold_release).
ALTER TABLE customers
    ADD COLUMN hold_placed_at timestamptz,
    ADD COLUMN hold_until     timestamptz,
    ADD COLUMN hold_reason    text,
    ADD COLUMN hold_actor     text,
    ADD COLUMN hold_resume    boolean,
    -- A hold is all of placed_at, reason, actor and resume, or none of them.
    ADD CONSTRAINT customers_hold_whole CHECK (
        (hold_placed_at IS NULL) = (hold_reason IS NULL)
        AND (hold_placed_at IS NULL) = (hold_actor IS NULL)
        AND (hold_placed_at IS NULL) = (hold_resume IS NULL)),
    ADD CONSTRAINT customers_hold_until_after_placed CHECK (
        hold_until IS NULL OR (hold_placed_at IS NOT NULL AND hold_until > hold_placed_at)),
    ADD CONSTRAINT customers_hold_reason_present CHECK (
        hold_reason IS NULL OR (btrim(hold_reason) <> '' AND hold_reason !~ '[\r\n]')),
    ADD CONSTRAINT customers_hold_actor_present CHECK (
        hold_actor IS NULL OR btrim(hold_actor) <> '');

CREATE INDEX customers_on_hold_idx ON customers (hold_placed_at) WHERE hold_placed_at IS NOT NULL;
