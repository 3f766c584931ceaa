-- Incident counts per area of one level of version :v in [:since, :until), optionally of one
-- category and priority: each area counts the incidents of the grids below it (filed under
-- them, or lying in them when filed under a grid of another version).
WITH RECURSIVE tree AS (
    SELECT id AS root, id, level FROM areas WHERE version_id = :v AND level = :level
    UNION ALL
    SELECT t.root, a.id, a.level FROM areas a JOIN tree t ON a.parent_id = t.id
)
-- the name in the request's language (:lang, areas.names), else as imported
SELECT r.id, r.code, coalesce(r.names ->> :lang, r.name) AS name,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(r.geom, 0.00002), 6) AS geometry,
       coalesce(c.n, 0) AS n
FROM areas r
LEFT JOIN (
    SELECT t.root, count(*) AS n FROM (
        SELECT i.grid_id FROM incidents i JOIN areas a ON a.id = i.grid_id AND a.version_id = :v
        WHERE i.reported_at >= :since AND i.reported_at < :until
          AND (CAST(:category AS text) IS NULL OR i.category = :category)
          AND (CAST(:priority AS smallint) IS NULL OR i.priority = :priority)
        UNION ALL
        -- filed under another version's grid (history from before a redraw) or none:
        -- counted in the grid of :v that holds it (the point lookup's rule)
        SELECT (SELECT n.id FROM areas n WHERE n.version_id = :v AND n.level = 'grid'
                  AND ST_Intersects(n.geom, i.location) ORDER BY n.id LIMIT 1)
        FROM incidents i LEFT JOIN areas a ON a.id = i.grid_id
        WHERE i.reported_at >= :since AND i.reported_at < :until
          AND (i.grid_id IS NULL OR a.version_id <> :v)
          AND (CAST(:category AS text) IS NULL OR i.category = :category)
          AND (CAST(:priority AS smallint) IS NULL OR i.priority = :priority)
    ) filed JOIN tree t ON t.id = filed.grid_id AND t.level = 'grid'
    GROUP BY t.root
) c ON c.root = r.id
WHERE r.version_id = :v AND r.level = :level
ORDER BY r.id
