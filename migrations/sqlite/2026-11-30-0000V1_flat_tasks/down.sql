DROP INDEX tranches_scheduled;
