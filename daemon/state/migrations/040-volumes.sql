-- Volumes of the local driver. The row is written after the volume's directory exists, so a crash in
-- between leaves a directory without a row, which the sweep at the next start removes. `anonymous`: made
-- for a container (`-v /path`, an image's VOLUME) and removed with it on `--rm` / `rm -v`. Which
-- containers use a volume is read from the containers' mount points (kept with each container).
CREATE TABLE volumes (
  name TEXT PRIMARY KEY,
  driver TEXT NOT NULL DEFAULT 'local',
  created TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  options TEXT NOT NULL DEFAULT '{}',
  anonymous INTEGER NOT NULL DEFAULT 0
);
