-- The grids of area :p (today's plan of a parent being redrawn): its children that are grids,
-- by code, as WKB.
SELECT a.id, a.code, a.name, a.parent_id, ST_AsBinary(a.geom) AS wkb
FROM areas a WHERE a.parent_id = :p AND a.level = 'grid' ORDER BY a.code
