-- The escalation history of incidents whose level is above what their rows in
-- incident_escalations explain (generated or imported history, written without the
-- escalate action): one row per missing level, at the incident's escalated_at, else its
-- reported_at. Escalation climbs one level at a time, so a level says which levels an
-- incident passed, though not when it passed the lower ones. Migration 0035 backfilled
-- the same way (its frozen copy).
INSERT INTO incident_escalations (incident_id, from_level, to_level, at, who, reason)
SELECT i.id, lvl - 1, lvl, coalesce(i.escalated_at, i.reported_at), 'history',
       'recorded from incidents.escalation_level'
FROM incidents i CROSS JOIN LATERAL generate_series(1, i.escalation_level) AS lvl
WHERE i.escalation_level > 0
  AND NOT EXISTS (SELECT 1 FROM incident_escalations e
                  WHERE e.incident_id = i.id AND e.to_level = lvl)
