DROP TRIGGER ledger_entries_totals ON ledger_entries;
DROP FUNCTION ledger_totals_add_statement();
CREATE TRIGGER ledger_entries_daily_totals AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_daily_totals_add();
CREATE TRIGGER ledger_entries_monthly_totals AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_monthly_totals_add();
