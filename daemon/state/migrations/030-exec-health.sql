-- Exec records outlive a berthd restart (Docker keeps them in memory only): inspect of a running or
-- finished exec still answers after kill -9 or a restart. config is the exec's create options as JSON;
-- exit_code is NULL until the process has ended; ended_at (ms since the epoch) lets finished records expire.
CREATE TABLE execs (
  id           TEXT PRIMARY KEY,
  container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
  config       TEXT NOT NULL,
  started      INTEGER NOT NULL DEFAULT 0,
  running      INTEGER NOT NULL DEFAULT 0,
  exit_code    INTEGER,
  pid          INTEGER NOT NULL DEFAULT 0,
  ended_at     INTEGER
);
CREATE INDEX execs_container ON execs(container_id);

-- State.Health of the container's current run ({"startedAt": …, "view": {Status, FailingStreak, Log}}).
ALTER TABLE container_state ADD COLUMN health TEXT;
