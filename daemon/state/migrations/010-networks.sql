-- Networks and the endpoints of containers on them. A network row is written before its bridge is made,
-- so that a crash in between leaves a name the sweep at the next start can find. An endpoint row says a
-- container is attached to a network (from create or connect); `ip` and `mac` are set while it runs (or
-- always, for a static --ip), and the IPAM of a network is the set of its endpoints' addresses.
CREATE TABLE networks (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  driver TEXT NOT NULL,
  created TEXT NOT NULL,
  bridge TEXT NOT NULL DEFAULT '',
  subnet TEXT NOT NULL DEFAULT '',
  ip_range TEXT NOT NULL DEFAULT '',
  gateway TEXT NOT NULL DEFAULT '',
  aux TEXT NOT NULL DEFAULT '{}',
  internal INTEGER NOT NULL DEFAULT 0,
  attachable INTEGER NOT NULL DEFAULT 0,
  labels TEXT NOT NULL DEFAULT '{}',
  options TEXT NOT NULL DEFAULT '{}',
  ipam_user INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE endpoints (
  network_id TEXT NOT NULL REFERENCES networks(id),
  container_id TEXT NOT NULL,
  endpoint_id TEXT NOT NULL DEFAULT '',
  ip TEXT NOT NULL DEFAULT '',
  mac TEXT NOT NULL DEFAULT '',
  static_ip TEXT NOT NULL DEFAULT '',
  static_mac TEXT NOT NULL DEFAULT '',
  aliases TEXT NOT NULL DEFAULT '[]',
  ifname TEXT NOT NULL DEFAULT '',
  host_if TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (network_id, container_id)
);
CREATE INDEX endpoints_container ON endpoints(container_id);
-- Published ports of running containers: what the DNAT rules say and `docker port` shows.
CREATE TABLE ports (
  container_id TEXT NOT NULL,
  proto TEXT NOT NULL,
  host_ip TEXT NOT NULL,
  host_port INTEGER NOT NULL,
  ctr_ip TEXT NOT NULL,
  ctr_port INTEGER NOT NULL,
  PRIMARY KEY (proto, host_ip, host_port)
);
CREATE INDEX ports_container ON ports(container_id);
