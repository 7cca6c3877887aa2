-- Images: the config blob is the image (its sha256 is the id). Layers are keyed by chain id; the overlay
-- directory of a layer is named by its cache id. References map a normalised name:tag or name@digest to an
-- image id.
CREATE TABLE layers (
  chain_id   TEXT PRIMARY KEY,            -- sha256:…
  diff_id    TEXT NOT NULL,               -- sha256 of the uncompressed tar
  parent     TEXT REFERENCES layers(chain_id),
  cache_id   TEXT NOT NULL UNIQUE,        -- directory name under overlay2/
  size       INTEGER NOT NULL,            -- bytes of the unpacked layer
  created_at TEXT NOT NULL
);

CREATE TABLE images (
  id         TEXT PRIMARY KEY,            -- sha256:<hex of config>
  config     TEXT NOT NULL,               -- the image config JSON, byte for byte
  top_chain  TEXT REFERENCES layers(chain_id),
  size       INTEGER NOT NULL,
  created    TEXT NOT NULL,               -- config.created (RFC3339)
  loaded_at  TEXT NOT NULL
);

CREATE TABLE image_refs (
  ref        TEXT PRIMARY KEY,            -- docker.io/library/busybox:latest or name@sha256:…
  image_id   TEXT NOT NULL REFERENCES images(id),
  kind       TEXT NOT NULL CHECK (kind IN ('tag', 'digest'))
);
CREATE INDEX image_refs_image ON image_refs(image_id);

-- Containers: config is immutable after create (the create body, with image defaults merged);
-- state is the mutable part, one row per container, rewritten on every transition.
CREATE TABLE containers (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,       -- with the leading slash, as Docker stores it
  image_id    TEXT NOT NULL REFERENCES images(id),
  image_ref   TEXT NOT NULL,              -- what the user typed (Config.Image)
  created     TEXT NOT NULL,
  config      TEXT NOT NULL,              -- Config JSON
  host_config TEXT NOT NULL,              -- HostConfig JSON
  extra       TEXT NOT NULL               -- Path, Args, layer cache id, paths
);
CREATE INDEX containers_image ON containers(image_id);

CREATE TABLE container_state (
  id            TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
  status        TEXT NOT NULL CHECK (status IN ('created','running','paused','restarting','removing','exited','dead')),
  pid           INTEGER NOT NULL DEFAULT 0,
  shim_pid      INTEGER NOT NULL DEFAULT 0,
  exit_code     INTEGER NOT NULL DEFAULT 0 CHECK (exit_code >= -1 AND exit_code <= 255),
  error         TEXT NOT NULL DEFAULT '',
  started_at    TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
  finished_at   TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
  oom_killed    INTEGER NOT NULL DEFAULT 0,
  restart_count INTEGER NOT NULL DEFAULT 0,
  has_been_started INTEGER NOT NULL DEFAULT 0
);
