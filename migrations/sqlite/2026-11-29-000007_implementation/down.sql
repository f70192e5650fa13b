DROP TABLE closeouts;
DROP TABLE tranche_payments;
DROP TABLE reports;
DROP TABLE tranches;
