-- For each grid :ids of any boundary version, the code of the grid of version :today (the one
-- in force) it shares the most area with (m², on the spheroid; ties to the lowest id): the
-- grid of today it continues. A grid kept as it was (same code, same polygon) continues
-- itself without an intersection computed. NULL when it only touches today's grids or lies
-- outside them.
SELECT n.id, coalesce(
    (SELECT o.code FROM areas o
     WHERE o.version_id = :today AND o.level = 'grid' AND o.code = n.code
       AND ST_Equals(o.geom, n.geom)),
    (SELECT o.code FROM areas o
     WHERE o.version_id = :today AND o.level = 'grid'
       AND ST_Intersects(o.geom, n.geom) AND NOT ST_Touches(o.geom, n.geom)
     ORDER BY ST_Area(ST_Intersection(o.geom, n.geom)::geography) DESC, o.id
     LIMIT 1)) AS continues
FROM areas n
WHERE n.id = ANY(:ids)
