-- What the polygons of one parent of a proposal hold of rental units (sum of unit_count), per
-- polygon, grid filed under and H3 res-10 cell, with the pair's disclosure key: as
-- planning_unit_households.sql.
SELECT i, grid_id, sum(units), disclosure_key('atom:' || cell || ':' || coalesce(grid_id, 0))
FROM (
    SELECT DISTINCT ON (x.id) f.i, x.grid_id, x.h3_10 AS cell, x.unit_count AS units
    FROM planning_units f
    JOIN rental_units x ON ST_Intersects(f.geom, x.location)
    WHERE f.p = :p AND f.kind = :kind AND (:kind = 'block' OR NOT EXISTS (
        SELECT 1 FROM planning_units k WHERE k.p = :p AND k.kind = 'block' AND k.i < f.b
        AND ST_Intersects(k.geom, x.location)))
    ORDER BY x.id, f.i) hit
GROUP BY i, grid_id, cell
