-- Points that fell in no grid of version :v but lie within :tol_m metres of one: the nearest
-- such grid of each (ties: the lower id). Distances are geodesic (geography, metres on the
-- WGS84 spheroid); the bounding-box test `&&` on a degree box that holds the whole tolerance
-- circle (110,574 m is the shortest degree of latitude; a degree of longitude is at least
-- that times cos(latitude), capped at 89.9 degrees) lets the GiST index of areas.geom pick
-- the candidates, so no point scans every grid.
SELECT p.i, g.id, g.distance_m
FROM unnest(CAST(:i AS bigint[]), CAST(:lon AS float8[]), CAST(:lat AS float8[])) AS p(i, lon, lat)
CROSS JOIN LATERAL (
    SELECT a.id,
           ST_Distance(a.geom::geography,
                       ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography) AS distance_m
    FROM areas a
    WHERE a.version_id = :v
      AND a.level = 'grid'
      AND a.geom && ST_Expand(
            ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326),
            :tol_m / 110574.0 / cos(radians(least(abs(p.lat), 89.9))))
      AND ST_DWithin(a.geom::geography,
                     ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography, :tol_m)
    ORDER BY distance_m, a.id
    LIMIT 1
) AS g
