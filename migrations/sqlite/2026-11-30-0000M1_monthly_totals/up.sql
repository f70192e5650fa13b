-- Monthly roll-up of the ledger's daily totals (issue 14): a statement's opening balance (and any long
-- period) sums whole months here plus the days of the partial months at its ends in `ledger_daily_totals`,
-- so its cost is bounded by the number of months, not of days. Kept by the database in the posting's
-- transaction, like the daily totals; back-filled below; compared with the entries by `ledger check`.
CREATE TABLE ledger_monthly_totals (
    pool_id          TEXT NOT NULL,
    month            DATE NOT NULL,
    account_kind     TEXT NOT NULL,
    transaction_kind TEXT NOT NULL,
    total_minor      BIGINT NOT NULL,
    entries          BIGINT NOT NULL,
    PRIMARY KEY (pool_id, month, account_kind, transaction_kind)
);

CREATE TRIGGER ledger_entries_monthly_totals AFTER INSERT ON ledger_entries
BEGIN
    INSERT INTO ledger_monthly_totals (pool_id, month, account_kind, transaction_kind, total_minor, entries)
    SELECT t.pool_id, date(t.created_at, 'start of month'), a.kind, t.kind, NEW.amount_minor, 1
    FROM ledger_transactions t, ledger_accounts a
    WHERE t.id = NEW.transaction_id AND a.id = NEW.account_id
    ON CONFLICT (pool_id, month, account_kind, transaction_kind) DO UPDATE
    SET total_minor = total_minor + excluded.total_minor,
        entries = entries + 1;
END;

-- Back-filled from the entries themselves (this migration sorts before the one creating the daily totals).
INSERT INTO ledger_monthly_totals (pool_id, month, account_kind, transaction_kind, total_minor, entries)
SELECT t.pool_id, date(t.created_at, 'start of month'), a.kind, t.kind, SUM(e.amount_minor), COUNT(*)
FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
JOIN ledger_accounts a ON a.id = e.account_id
WHERE true
GROUP BY t.pool_id, date(t.created_at, 'start of month'), a.kind, t.kind;
