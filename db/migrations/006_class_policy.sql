-- The past-due chain and working time of a class (SPEC 2.9, 2.10), as the columns of the
-- policy that domain/collection/policy.py reads. As in 001, the checks mirror the domain's
-- invariants (ClassPolicy, LateFee, WorkingTime) so no impossible policy can be stored.
-- Defaults are SPEC's: no late fee, charged at D when set, no termination, every day, all
-- day, no holidays.

ALTER TABLE customer_classes
    -- Either a fixed fee in minor units of the class currency, or a percentage in basis
    -- points (2% = 200) of the invoice's remaining amount; never both.
    ADD COLUMN late_fee_fixed          bigint
        CONSTRAINT customer_classes_late_fee_fixed_positive CHECK (late_fee_fixed > 0),
    ADD COLUMN late_fee_basis_points   integer
        CONSTRAINT customer_classes_late_fee_percent_range
        CHECK (late_fee_basis_points > 0 AND late_fee_basis_points <= 10000),
    ADD COLUMN late_fee_after_seconds  bigint NOT NULL DEFAULT 0
        CONSTRAINT customer_classes_late_fee_after_non_negative
        CHECK (late_fee_after_seconds >= 0),
    -- NULL: never terminated.
    ADD COLUMN terminate_after_seconds bigint
        CONSTRAINT customer_classes_terminate_after_positive CHECK (terminate_after_seconds > 0),
    -- ISO weekdays, Monday 1 to Sunday 7 (as extract(isodow ...)); at least one.
    ADD COLUMN working_days            smallint[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}'
        CONSTRAINT customer_classes_working_days_valid CHECK (
            array_position(working_days, NULL) IS NULL
            AND array_ndims(working_days) = 1
            AND cardinality(working_days) >= 1
            AND 1 <= ALL (working_days) AND 7 >= ALL (working_days)),
    -- Minutes of the local day: [start, end), 1440 meaning midnight at the end of the day.
    ADD COLUMN working_start_minute    integer NOT NULL DEFAULT 0,
    ADD COLUMN working_end_minute      integer NOT NULL DEFAULT 1440,
    ADD COLUMN holidays                date[] NOT NULL DEFAULT '{}'
        CONSTRAINT customer_classes_holidays_valid CHECK (
            array_position(holidays, NULL) IS NULL
            AND coalesce(array_ndims(holidays), 1) = 1),
    ADD CONSTRAINT customer_classes_late_fee_one_form
        CHECK (late_fee_fixed IS NULL OR late_fee_basis_points IS NULL),
    ADD CONSTRAINT customer_classes_working_hours_within_a_day
        CHECK (0 <= working_start_minute AND working_start_minute < working_end_minute
               AND working_end_minute <= 1440);
