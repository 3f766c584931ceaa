-- Incidents as Open311 service requests, with their grid and community; callers add the
-- WHERE clause (bound parameters only) and the order.
SELECT i.id, i.category, c.name AS service_name, c.names AS service_names,
       c.resolution_target_min, i.status,
       i.description, i.reported_at, i.updated_at, i.escalation_level,
       ST_X(i.location) AS lon, ST_Y(i.location) AS lat,
       g.code AS grid_code, g.name AS grid_name, g.names AS grid_names,
       p.code AS community_code, p.name AS community_name, p.names AS community_names, i.grid_id, d.address_string, d.media_url
FROM incidents i
JOIN categories c ON c.code = i.category
LEFT JOIN areas g ON g.id = i.grid_id
LEFT JOIN areas p ON p.id = g.parent_id
LEFT JOIN service_request_details d ON d.incident_id = i.id
