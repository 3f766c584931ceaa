-- The workload terms of every grid of boundary version :v (the one in force): incident handling
-- hours and count in [:since, :until) (filed under the grid, or located in it when filed under
-- another version's grid), households, rental units (sum of unit_count), area, and the grid's
-- disclosure key (services/access/disclosure.py: to publish the counts, never to weigh).
SELECT g.id, g.code, g.name, g.parent_id, g.area_m2 / 1e6 AS area_km2,
       coalesce(i.hours, 0) AS incident_hours, coalesce(i.n, 0) AS incidents,
       coalesce(h.n, 0) AS households, coalesce(r.n, 0) AS rental_units,
       disclosure_key('area:' || g.id) AS household_key,
       disclosure_key('area:' || g.id) AS rental_key
FROM areas g
LEFT JOIN (
    SELECT grid_id, sum(minutes) / 60.0 AS hours, count(*) AS n FROM (
        SELECT x.grid_id, c.handling_effort_min AS minutes
        FROM incidents x JOIN categories c ON c.code = x.category
        JOIN areas a ON a.id = x.grid_id AND a.version_id = :v
        WHERE x.reported_at >= :since AND x.reported_at < :until
        UNION ALL
        -- incidents filed under a grid of another version (reported before a redraw that
        -- has been published since: they stay filed under the grid in force then) or under
        -- none: counted where they lie, by the point lookup's rule, so a published plan is
        -- measured against the same history as its draft was
        SELECT (SELECT n.id FROM areas n WHERE n.version_id = :v AND n.level = 'grid'
                  AND ST_Intersects(n.geom, x.location) ORDER BY n.id LIMIT 1),
               c.handling_effort_min
        FROM incidents x JOIN categories c ON c.code = x.category
        LEFT JOIN areas a ON a.id = x.grid_id
        WHERE x.reported_at >= :since AND x.reported_at < :until
          AND (x.grid_id IS NULL OR a.version_id <> :v)) filed
    GROUP BY grid_id) i
       ON i.grid_id = g.id
LEFT JOIN (SELECT grid_id, count(*) AS n FROM households GROUP BY grid_id) h
       ON h.grid_id = g.id
LEFT JOIN (SELECT grid_id, sum(unit_count) AS n FROM rental_units GROUP BY grid_id) r
       ON r.grid_id = g.id
WHERE g.version_id = :v AND g.level = 'grid'
ORDER BY g.code
