-- The areas whose grids are redrawn, under the areas :ids (any level above grid), each once,
-- by code: the areas that have grids as children. In a city of districts, streets,
-- communities and grids these are the communities; in one of districts and grids (Chicago's
-- police districts and beats) the districts.
WITH RECURSIVE below AS (
    SELECT id, level FROM areas WHERE id = ANY(:ids)
    UNION ALL SELECT a.id, a.level FROM areas a JOIN below b ON a.parent_id = b.id
    WHERE b.level <> 'grid'
)
SELECT DISTINCT a.id, a.code, a.name, a.level, ST_AsBinary(a.geom) AS wkb
FROM areas a JOIN below b ON b.id = a.id
WHERE a.level <> 'grid'
  AND EXISTS (SELECT 1 FROM areas g WHERE g.parent_id = a.id AND g.level = 'grid')
ORDER BY a.code
