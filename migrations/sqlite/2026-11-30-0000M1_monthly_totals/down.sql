DROP TRIGGER ledger_entries_monthly_totals;
DROP TABLE ledger_monthly_totals;
