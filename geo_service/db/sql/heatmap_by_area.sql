-- Incident counts per area of one level of version :v in [:since, :until), optionally of one
-- category and priority: each area counts the incidents of the grids below it.
WITH RECURSIVE tree AS (
    SELECT id AS root, id, level FROM areas WHERE version_id = :v AND level = :level
    UNION ALL
    SELECT t.root, a.id, a.level FROM areas a JOIN tree t ON a.parent_id = t.id
)
SELECT r.id, r.code, r.name,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(r.geom, 0.00002), 6) AS geometry,
       coalesce(c.n, 0) AS n
FROM areas r
LEFT JOIN (
    SELECT t.root, count(*) AS n FROM tree t JOIN incidents i ON i.grid_id = t.id
    WHERE t.level = 'grid' AND i.reported_at >= :since AND i.reported_at < :until
      AND (CAST(:category AS text) IS NULL OR i.category = :category)
      AND (CAST(:priority AS smallint) IS NULL OR i.priority = :priority)
    GROUP BY t.root
) c ON c.root = r.id
WHERE r.version_id = :v AND r.level = :level
ORDER BY r.id
