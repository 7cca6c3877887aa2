-- A removed container's files still to be deleted: `docker rm` answers once the container's row is gone and
-- deletes its directories (read-write layer, init layer, container and state dirs) afterwards. The mark is
-- written in the transaction that deletes the row, and deleted once the files are gone; a berthd that died
-- in between finishes the marked removals at its next start.
CREATE TABLE pending_removals (
  id TEXT PRIMARY KEY,
  layer_id TEXT NOT NULL
);
