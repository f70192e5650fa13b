DROP TABLE flags;
DROP TABLE consultation_responses;
DROP TABLE consultees;
DROP TABLE consultation_rounds;
DROP TABLE consultation_rules;
DROP TABLE activities;
