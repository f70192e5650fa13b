DROP TRIGGER ledger_entries_monthly_totals ON ledger_entries;
DROP FUNCTION ledger_monthly_totals_add();
DROP TABLE ledger_monthly_totals;
