DROP TABLE reference_counters;
DROP TABLE proposal_versions;
DROP TABLE proposals;
DROP TABLE pool_settings;
DROP TABLE pools;
DROP TABLE sectors;
DROP TABLE areas;
