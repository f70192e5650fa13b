DROP TABLE approval_steps;
