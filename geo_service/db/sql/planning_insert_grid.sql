-- A new grid of draft :d under the copy of parent :parent (through idmap): its WGS84 WKB made
-- valid and multi, its area on the spheroid, and its properties (JSON).
INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2, properties)
SELECT :d, 'grid', :code, :name, m.new,
       ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_GeomFromWKB(:wkb, 4326)), 3)),
       ST_Area(ST_GeomFromWKB(:wkb, 4326)::geography),
       CAST(:props AS jsonb)
FROM idmap m WHERE m.old = :parent
