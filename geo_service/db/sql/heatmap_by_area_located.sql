-- Incident counts per area of one level of boundary version :v (any version: a draft, a
-- scheduled one, an older one) in [:since, :until), optionally of one category and priority,
-- the incidents attributed by where they lie, not by their stored grid_id (which names the
-- grids of the version in force when they were written): each area counts the incidents
-- lying in the grids below it. Only the grids listed in :shown count (NULL: all of them), and
-- only the areas listed in :areas are returned (NULL: every area of the level).
--
-- An incident belongs to the grid of :v holding its point, the rule of the point lookup and of
-- planning_grid_terms_located.sql: ST_Intersects, so a point on a border shared by several
-- grids, or in an overlap a draft may still have, counts once, in the lowest grid id (chosen
-- among all the version's grids before :shown is applied, so a hidden grid keeps its points).
-- Grids lead the join (the nested loop probes the incidents' GiST index with one polygon at a
-- time, prepared once for all the points it tests); the window and the filters are tested on
-- what the probe finds (IS TRUE: a test no btree can serve, so the planner does not AND the
-- reported_at index into every probe; see planning_grid_terms_located.sql).
WITH RECURSIVE tree AS (
    SELECT id AS root, id, level FROM areas WHERE version_id = :v AND level = :level
    UNION ALL
    SELECT t.root, a.id, a.level FROM areas a JOIN tree t ON a.parent_id = t.id
), grids AS MATERIALIZED (
    SELECT id, geom FROM areas WHERE version_id = :v AND level = 'grid'
), incident_grid AS (
    SELECT min(g.id) AS grid_id
    FROM grids g JOIN incidents x ON ST_Intersects(g.geom, x.location)
    WHERE (x.reported_at >= :since AND x.reported_at < :until
           AND (CAST(:category AS text) IS NULL OR x.category = :category)
           AND (CAST(:priority AS smallint) IS NULL OR x.priority = :priority)) IS TRUE
    GROUP BY x.id
), per_grid AS (
    SELECT grid_id, count(*) AS n FROM incident_grid
    WHERE CAST(:shown AS integer[]) IS NULL OR grid_id = ANY(CAST(:shown AS integer[]))
    GROUP BY grid_id
)
-- the name in the request's language (:lang, areas.names), else as imported
SELECT r.id, r.code, coalesce(r.names ->> :lang, r.name) AS name,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(r.geom, 0.00002), 6) AS geometry,
       coalesce(c.n, 0) AS n
FROM areas r
LEFT JOIN (
    SELECT t.root, sum(p.n)::bigint AS n
    FROM per_grid p JOIN tree t ON t.id = p.grid_id AND t.level = 'grid'
    GROUP BY t.root
) c ON c.root = r.id
WHERE r.version_id = :v AND r.level = :level
  AND (CAST(:areas AS integer[]) IS NULL OR r.id = ANY(CAST(:areas AS integer[])))
ORDER BY r.id
