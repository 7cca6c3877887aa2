-- Whether a network's IPAM config had a subnet but no gateway (berth chose the subnet's first address):
-- Docker shows IPAM.Config as it was given, so inspect then has no Gateway for that family. Networks made
-- before this kept no record and go on showing their gateway.
ALTER TABLE networks ADD COLUMN gateway_implied INTEGER NOT NULL DEFAULT 0;
ALTER TABLE networks ADD COLUMN gateway6_implied INTEGER NOT NULL DEFAULT 0;
