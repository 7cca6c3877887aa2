-- API 1.44+'s per-endpoint settings kept as given: EndpointSettings.DriverOpts (an object of strings) and
-- EndpointSettings.Links (legacy links made on a user network, "target:alias"), shown back by inspect.
ALTER TABLE endpoints ADD COLUMN driver_opts TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoints ADD COLUMN links TEXT NOT NULL DEFAULT '[]';
