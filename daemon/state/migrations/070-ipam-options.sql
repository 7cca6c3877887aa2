-- IPAM.Options as the client sent it: NULL when the create body had none (docker-py), '{}' when it sent an
-- empty object (the docker CLI). Networks made before this kept no record: shown as the CLI made them.
ALTER TABLE networks ADD COLUMN ipam_options TEXT;
UPDATE networks SET ipam_options = '{}' WHERE driver = 'bridge' AND name != 'bridge';
