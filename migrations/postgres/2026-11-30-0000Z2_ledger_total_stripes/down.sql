-- Folds every stripe into one row per key, then restores the single-row keys and the trigger without stripes.
CREATE TEMPORARY TABLE folded_daily AS
    SELECT pool_id, day, account_kind, transaction_kind, SUM(total_minor) AS total_minor, SUM(entries) AS entries
    FROM ledger_daily_totals GROUP BY 1, 2, 3, 4;
DELETE FROM ledger_daily_totals;
DROP INDEX ledger_daily_totals_unfolded;
ALTER TABLE ledger_daily_totals DROP CONSTRAINT ledger_daily_totals_pkey;
ALTER TABLE ledger_daily_totals DROP COLUMN stripe;
ALTER TABLE ledger_daily_totals ADD PRIMARY KEY (pool_id, day, account_kind, transaction_kind);
INSERT INTO ledger_daily_totals (pool_id, day, account_kind, transaction_kind, total_minor, entries)
    SELECT pool_id, day, account_kind, transaction_kind, total_minor, entries FROM folded_daily;

CREATE TEMPORARY TABLE folded_monthly AS
    SELECT pool_id, month, account_kind, transaction_kind, SUM(total_minor) AS total_minor, SUM(entries) AS entries
    FROM ledger_monthly_totals GROUP BY 1, 2, 3, 4;
DELETE FROM ledger_monthly_totals;
DROP INDEX ledger_monthly_totals_unfolded;
ALTER TABLE ledger_monthly_totals DROP CONSTRAINT ledger_monthly_totals_pkey;
ALTER TABLE ledger_monthly_totals DROP COLUMN stripe;
ALTER TABLE ledger_monthly_totals ADD PRIMARY KEY (pool_id, month, account_kind, transaction_kind);
INSERT INTO ledger_monthly_totals (pool_id, month, account_kind, transaction_kind, total_minor, entries)
    SELECT pool_id, month, account_kind, transaction_kind, total_minor, entries FROM folded_monthly;

CREATE OR REPLACE FUNCTION ledger_totals_add_statement() RETURNS trigger AS $$
BEGIN
    WITH moved AS (
        SELECT t.pool_id, CAST(t.created_at AS DATE) AS day, a.kind AS account_kind, t.kind AS transaction_kind,
               SUM(n.amount_minor) AS total_minor, COUNT(*) AS entries
        FROM new_entries n
        JOIN ledger_transactions t ON t.id = n.transaction_id
        JOIN ledger_accounts a ON a.id = n.account_id
        GROUP BY 1, 2, 3, 4
    ), daily AS (
        INSERT INTO ledger_daily_totals (pool_id, day, account_kind, transaction_kind, total_minor, entries)
        SELECT pool_id, day, account_kind, transaction_kind, total_minor, entries FROM moved
        ORDER BY pool_id, day, account_kind, transaction_kind
        ON CONFLICT (pool_id, day, account_kind, transaction_kind) DO UPDATE
        SET total_minor = ledger_daily_totals.total_minor + EXCLUDED.total_minor,
            entries = ledger_daily_totals.entries + EXCLUDED.entries
    )
    INSERT INTO ledger_monthly_totals (pool_id, month, account_kind, transaction_kind, total_minor, entries)
    SELECT pool_id, CAST(date_trunc('month', day) AS DATE), account_kind, transaction_kind, SUM(total_minor), SUM(entries)
    FROM moved
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (pool_id, month, account_kind, transaction_kind) DO UPDATE
    SET total_minor = ledger_monthly_totals.total_minor + EXCLUDED.total_minor,
        entries = ledger_monthly_totals.entries + EXCLUDED.entries;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
