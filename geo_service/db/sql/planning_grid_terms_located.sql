-- The workload terms of every grid of boundary version :v (any version: a draft, a scheduled
-- one, an older one), the records attributed by where they lie, not by their stored grid_id
-- (which names the grids of the version in force when they were written): incidents reported
-- in [:since, :until) by their location, households and rental units by theirs. Columns as
-- planning_grid_terms.sql, but for the disclosure keys: ``household_keys`` and
-- ``rental_keys`` list the keys of the distinct pairs (H3 res-10 cell, grid filed under) the
-- grid's homes fall in, which disclosure.key_sum adds up, so the same homes publish one
-- rounding however a planner draws them (services/access/disclosure.py).
--
-- A record belongs to the grid of :v holding its point, by the rule of the point lookup
-- (grid_at(), /areas/lookup) and of publishing: ST_Intersects, so a point on a border shared
-- by several grids, or in an overlap a draft may still have, counts once, in the lowest grid
-- id. Grids lead the join (the nested loop probes each table's GiST index with one polygon at
-- a time, which PostGIS prepares once for all the points it tests); min(g.id) per record
-- settles the few points more than one grid holds.
--
-- The window is tested as a filter on what the GiST probe finds (IS TRUE: a test no btree
-- can serve): the planner, misjudging how many points a polygon's box holds, would otherwise
-- AND the reported_at index into each of the 1,500 probes, re-reading the whole window per
-- grid (11.7 s instead of 2.5 s for 90 days of the demo city, as the generic plan a pooled
-- connection ends up with after a few calls).
WITH grids AS MATERIALIZED (
    SELECT id, geom FROM areas WHERE version_id = :v AND level = 'grid'
), incident_grid AS (
    SELECT x.category, min(g.id) AS grid_id
    FROM grids g JOIN incidents x ON ST_Intersects(g.geom, x.location)
    WHERE (x.reported_at >= :since AND x.reported_at < :until) IS TRUE
    GROUP BY x.id, x.category
), household_grid AS (
    SELECT min(g.id) AS grid_id, h.h3_10 AS cell, h.grid_id AS filed
    FROM grids g JOIN households h ON ST_Intersects(g.geom, h.location)
    GROUP BY h.id, h.h3_10, h.grid_id
), rental_grid AS (
    SELECT r.unit_count, min(g.id) AS grid_id, r.h3_10 AS cell, r.grid_id AS filed
    FROM grids g JOIN rental_units r ON ST_Intersects(g.geom, r.location)
    GROUP BY r.id, r.unit_count, r.h3_10, r.grid_id
)
SELECT g.id, g.code, g.name, g.parent_id, g.area_m2 / 1e6 AS area_km2,
       coalesce(i.hours, 0) AS incident_hours, coalesce(i.n, 0) AS incidents,
       coalesce(h.n, 0) AS households, coalesce(r.n, 0) AS rental_units,
       hk.keys AS household_keys, rk.keys AS rental_keys
FROM areas g
LEFT JOIN (SELECT grid_id, sum(c.handling_effort_min) / 60.0 AS hours, count(*) AS n
           FROM incident_grid x JOIN categories c ON c.code = x.category GROUP BY grid_id) i
       ON i.grid_id = g.id
LEFT JOIN (SELECT grid_id, count(*) AS n FROM household_grid GROUP BY grid_id) h
       ON h.grid_id = g.id
LEFT JOIN (SELECT grid_id, sum(unit_count) AS n FROM rental_grid GROUP BY grid_id) r
       ON r.grid_id = g.id
LEFT JOIN (SELECT grid_id, array_agg(disclosure_key('atom:' || cell || ':' || coalesce(filed, 0)))
                  AS keys
           FROM (SELECT DISTINCT grid_id, cell, filed FROM household_grid) d GROUP BY grid_id) hk
       ON hk.grid_id = g.id
LEFT JOIN (SELECT grid_id, array_agg(disclosure_key('atom:' || cell || ':' || coalesce(filed, 0)))
                  AS keys
           FROM (SELECT DISTINCT grid_id, cell, filed FROM rental_grid) d GROUP BY grid_id) rk
       ON rk.grid_id = g.id
WHERE g.version_id = :v AND g.level = 'grid'
ORDER BY g.code
