-- IPv6 on bridge networks (EnableIPv6): the network's IPv6 subnet, range and gateway beside the IPv4 ones,
-- and per endpoint its IPv6 address (the one given with --ip6, kept across restarts as static_ip is) and
-- EndpointSettings.IPAMConfig.LinkLocalIPs (a JSON array, as given).
ALTER TABLE networks ADD COLUMN enable_ipv6 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE networks ADD COLUMN subnet6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN ip_range6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN gateway6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN ipam_user6 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN ip6 TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN static_ip6 TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN link_local_ips TEXT NOT NULL DEFAULT '[]';
