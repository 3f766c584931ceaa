-- What the polygons of one parent of a proposal hold of incidents: (polygon, grid filed under,
-- handling hours and count of those reported in [:since, :until), count of all time: what
-- stability protects). The polygons are the rows of the temporary table planning_units
-- (p: the parent, i: its number, b: its block, kind 'block' or 'fragment'; services/planning/
-- parents.py) of kind :kind. Each incident counts once, in the lowest-numbered polygon holding
-- its point; a fragment counts only incidents no lower-numbered block holds, so the fragments
-- of a block share out exactly what the block counted.
SELECT i, grid_id, coalesce(sum(minutes) FILTER (WHERE w), 0) / 60.0,
       count(*) FILTER (WHERE w), count(*)
FROM (
    SELECT DISTINCT ON (x.id) f.i, x.grid_id, c.handling_effort_min AS minutes,
           (x.reported_at >= :since AND x.reported_at < :until) AS w
    FROM planning_units f
    JOIN incidents x ON ST_Intersects(f.geom, x.location)
    JOIN categories c ON c.code = x.category
    WHERE f.p = :p AND f.kind = :kind AND (:kind = 'block' OR NOT EXISTS (
        SELECT 1 FROM planning_units k WHERE k.p = :p AND k.kind = 'block' AND k.i < f.b
        AND ST_Intersects(k.geom, x.location)))
    ORDER BY x.id, f.i) hit
GROUP BY 1, 2
