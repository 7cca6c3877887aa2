-- Image metadata that is not in the config blob: the parent image (set by commit and build), when a tag
-- last changed (Metadata.LastTagTime), and a removal mark. An image that `docker rmi -f` removed while a
-- stopped container still uses it keeps its row (containers.image_id refers to it, and the container's
-- layers must stay) but is hidden from every lookup by name and from lists, as Docker hides it; the image
-- service drops such rows once no container refers to them.
ALTER TABLE images ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN last_tag_time TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z';
ALTER TABLE images ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX images_parent ON images(parent);
