DROP TABLE refresh_tokens;
DROP TABLE hats;
DROP TABLE users;
DROP TABLE organizations;
