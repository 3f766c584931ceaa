-- For each grid :ids of a draft (the two grids a hand edit changed), the grids of version
-- :today (the one in force) whose interior it overlaps (touching is not overlapping): the
-- area they share and today's grid's own area, both in m² on the spheroid. The edit's rule
-- for which grid of today each continues (edits.continued_grid) reads them.
SELECT n.id AS grid_id, o.id AS old_id, o.code AS old_code,
       ST_Area(o.geom::geography) AS old_m2,
       ST_Area(ST_Intersection(o.geom, n.geom)::geography) AS shared_m2
FROM areas n
JOIN areas o ON o.version_id = :today AND o.level = 'grid'
 AND ST_Intersects(o.geom, n.geom) AND NOT ST_Touches(o.geom, n.geom)
WHERE n.id = ANY(:ids)
ORDER BY n.id, o.id
