-- The workload terms of every grid of boundary version :v: incident handling hours and count
-- in [:since, :until), households, rental units (sum of unit_count), area, and the grid's
-- disclosure key (services/access/disclosure.py: to publish the counts, never to weigh).
SELECT g.id, g.code, g.name, g.parent_id, g.area_m2 / 1e6 AS area_km2,
       coalesce(i.hours, 0) AS incident_hours, coalesce(i.n, 0) AS incidents,
       coalesce(h.n, 0) AS households, coalesce(r.n, 0) AS rental_units,
       disclosure_key('area:' || g.id) AS household_key,
       disclosure_key('area:' || g.id) AS rental_key
FROM areas g
LEFT JOIN (SELECT grid_id, sum(c.handling_effort_min) / 60.0 AS hours, count(*) AS n
           FROM incidents x JOIN categories c ON c.code = x.category
           WHERE x.reported_at >= :since AND x.reported_at < :until GROUP BY grid_id) i
       ON i.grid_id = g.id
LEFT JOIN (SELECT grid_id, count(*) AS n FROM households GROUP BY grid_id) h
       ON h.grid_id = g.id
LEFT JOIN (SELECT grid_id, sum(unit_count) AS n FROM rental_units GROUP BY grid_id) r
       ON r.grid_id = g.id
WHERE g.version_id = :v AND g.level = 'grid'
ORDER BY g.code
