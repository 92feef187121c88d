-- At most once across crashes (SPEC 2.6): a delivery first commits a `sending` claim, talks
-- to SMTP with no connection or lock held, then records the outcome. A claim found later
-- whose owner never came back becomes `unknown` (never resent automatically).
ALTER TABLE notifications DROP CONSTRAINT notifications_status;
ALTER TABLE notifications ADD CONSTRAINT notifications_status
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown'));

ALTER TABLE notifications
    ADD COLUMN claim_token      text,         -- the attempt that owns the `sending` claim
    ADD COLUMN claimed_at       timestamptz,  -- when it was claimed (database clock)
    ADD COLUMN claim_expires_at timestamptz;  -- past this, its owner is presumed dead

ALTER TABLE notifications ADD CONSTRAINT notifications_sending_is_claimed
    CHECK (status <> 'sending' OR (claim_token IS NOT NULL AND claim_expires_at IS NOT NULL));
