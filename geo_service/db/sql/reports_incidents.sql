-- The incidents reported in [:since, :until) as the managers' reports read them: each in a
-- grid of version :v (the one in force): the grid it is filed under, or, when filed under
-- another version's grid (history from before a redraw) or none, the grid of :v that holds
-- its point (the point lookup's rule, as /workload and /heatmap/grids count). With its
-- lifecycle stamps and its stage targets in seconds: the dispatch target of its priority
-- (response_targets), the category's arrival (response_target_s: report to on scene) and
-- resolution targets; and its escalations to each level (incident_escalations).
SELECT i.id,
       CASE WHEN a.version_id = :v THEN i.grid_id
            ELSE (SELECT n.id FROM areas n WHERE n.version_id = :v AND n.level = 'grid'
                    AND ST_Intersects(n.geom, i.location) ORDER BY n.id LIMIT 1)
       END AS grid_id,
       i.source, i.priority, i.category, c."group" = ANY(:dispute_groups) AS is_dispute,
       i.status, i.responder_id, i.escalation_level, i.outcome, i.reopened_count,
       i.reported_at, i.dispatched_at, i.accepted_at, i.arrived_at, i.resolved_at,
       i.closed_at, i.cancelled_at,
       t.dispatch_s AS dispatch_target_s,
       c.response_target_s AS arrival_target_s,
       c.resolution_target_min * 60 AS resolution_target_s,
       coalesce(e.to_community, 0) AS escalations_to_community,
       coalesce(e.to_street, 0) AS escalations_to_street,
       coalesce(e.to_district, 0) AS escalations_to_district
FROM incidents i
JOIN categories c ON c.code = i.category
LEFT JOIN response_targets t ON t.priority = i.priority
LEFT JOIN areas a ON a.id = i.grid_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.to_level = 1) AS to_community,
           count(*) FILTER (WHERE x.to_level = 2) AS to_street,
           count(*) FILTER (WHERE x.to_level = 3) AS to_district
    FROM incident_escalations x WHERE x.incident_id = i.id AND i.escalation_level > 0
) e ON true
WHERE i.reported_at >= :since AND i.reported_at < :until
