-- What the polygons of one parent of a proposal hold of households, per polygon, grid filed
-- under and H3 res-10 cell: the count, and the disclosure key of the pair (cell, grid filed
-- under) that services/access/disclosure.key_sum adds up. Polygons and the counting rule as
-- planning_unit_incidents.sql.
SELECT i, grid_id, count(*), disclosure_key('atom:' || cell || ':' || coalesce(grid_id, 0))
FROM (
    SELECT DISTINCT ON (x.id) f.i, x.grid_id, x.h3_10 AS cell
    FROM planning_units f
    JOIN households x ON ST_Intersects(f.geom, x.location)
    WHERE f.p = :p AND f.kind = :kind AND (:kind = 'block' OR NOT EXISTS (
        SELECT 1 FROM planning_units k WHERE k.p = :p AND k.kind = 'block' AND k.i < f.b
        AND ST_Intersects(k.geom, x.location)))
    ORDER BY x.id, f.i) hit
GROUP BY i, grid_id, cell
