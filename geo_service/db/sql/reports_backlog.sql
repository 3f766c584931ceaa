-- The backlog at :at: incidents reported before it and still open then, each in a grid of
-- version :v as in reports_incidents.sql. Open at :at: open now, or ended (resolved,
-- closed or cancelled: the first of those stamps) after :at. A record closed without stamps
-- (an import, the demo's history) ended at an unknown moment and is not counted.
SELECT i.reported_at, i.responder_id,
       CASE WHEN a.version_id = :v THEN i.grid_id
            ELSE (SELECT n.id FROM areas n WHERE n.version_id = :v AND n.level = 'grid'
                    AND ST_Intersects(n.geom, i.location) ORDER BY n.id LIMIT 1)
       END AS grid_id
FROM incidents i
LEFT JOIN areas a ON a.id = i.grid_id
WHERE i.reported_at < :at
  AND (i.status = ANY(:open)
       OR least(i.resolved_at, i.closed_at, i.cancelled_at) > :at)
