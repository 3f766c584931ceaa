-- The communities under the areas :ids (communities, streets or districts), each once, by
-- code: grids hang under communities, so a street or district is redrawn community by
-- community.
WITH RECURSIVE below AS (
    SELECT id, level FROM areas WHERE id = ANY(:ids)
    UNION ALL SELECT a.id, a.level FROM areas a JOIN below b ON a.parent_id = b.id
    WHERE b.level <> 'community'
)
SELECT DISTINCT a.id, a.code, a.name, a.level, ST_AsBinary(a.geom) AS wkb
FROM areas a JOIN below b ON b.id = a.id WHERE a.level = 'community' ORDER BY a.code
