-- A jurisdiction rooted at area :root (current version): the area and everything below it,
-- and the grids of every version whose interior point lies inside it as drawn now.
WITH RECURSIVE below AS (
    SELECT id FROM areas WHERE id = :root
    UNION ALL
    SELECT a.id FROM areas a JOIN below b ON a.parent_id = b.id
)
SELECT
  (SELECT array_agg(id) FROM below) AS area_ids,
  (SELECT array_agg(g.id) FROM areas g, areas j
    WHERE j.id = :root AND g.level = 'grid' AND g.geom && j.geom
      AND ST_Intersects(j.geom, ST_PointOnSurface(g.geom))) AS grid_ids
