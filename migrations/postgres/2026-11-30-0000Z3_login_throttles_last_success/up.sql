-- The sign-in budget learns its known clients from the pairs' last sign-ins (at startup, the known-address
-- period; then every sweep, the last minutes): an index on them, not a scan of every throttle row a flood left.
CREATE INDEX login_throttles_last_success ON login_throttles (last_success_at) WHERE last_success_at IS NOT NULL;
