-- Copy the areas of one :level of version :v into draft :d, all but the ids in :replaced,
-- with parents remapped through the temporary idmap (old id -> new id) of the level above.
INSERT INTO areas (version_id, level, code, name, names, parent_id, geom, area_m2, properties)
SELECT :d, a.level, a.code, a.name, a.names, m.new, a.geom, a.area_m2, a.properties
FROM areas a LEFT JOIN idmap m ON m.old = a.parent_id
WHERE a.version_id = :v AND a.level = :level AND NOT a.id = ANY(:replaced)
