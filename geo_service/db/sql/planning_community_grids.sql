-- The grids under area :p (today's plan of a parent being redrawn), by code, as WKB.
WITH RECURSIVE below AS (
    SELECT id, level FROM areas WHERE id = :p
    UNION ALL SELECT a.id, a.level FROM areas a JOIN below b ON a.parent_id = b.id
)
SELECT a.id, a.code, a.name, a.parent_id, ST_AsBinary(a.geom) AS wkb
FROM areas a JOIN below b ON b.id = a.id WHERE b.level = 'grid' ORDER BY a.code
