DROP TABLE session_cutoffs;
DROP TABLE password_setup_tokens;
DROP TABLE hat_grant_requests;
