-- The nearest open incident (statuses :open) of category :c within :r metres of (:x, :y) and
-- :w seconds of :t. :deg is a box in degrees surely holding the circle, so the spatial index
-- narrows the candidates before the exact geography distance.
SELECT id FROM incidents
WHERE status = ANY(:open)
  AND category = :c
  AND reported_at BETWEEN :t - make_interval(secs => :w)
                      AND :t + make_interval(secs => :w)
  AND location && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :deg)
  AND ST_DWithin(CAST(location AS geography),
                 CAST(ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS geography), :r)
ORDER BY ST_Distance(CAST(location AS geography),
                     CAST(ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS geography)), id
LIMIT 1
