-- API 1.48's EndpointSettings.GwPriority: of a container's networks, the one with the highest priority
-- gives its default route.
ALTER TABLE endpoints ADD COLUMN gw_priority INTEGER NOT NULL DEFAULT 0;
