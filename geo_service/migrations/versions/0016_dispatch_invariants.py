"""One open incident per responder, per-user idempotency keys (issue 13).

* ``ux_incidents_open_responder``: a partial unique index on ``incidents(responder_id)`` over
  the open statuses, so no responder can hold two open incidents whatever the application
  does. Existing data is repaired first: of several open incidents naming one responder the
  most recently dispatched keeps it and the others go back to ``reported`` (unassigned, with
  an audit row each); a responder marked ``available`` while it holds an open incident is
  set ``busy``.
* Client idempotency keys (the ``Idempotency-Key`` header) move to ``request_key`` and are
  unique per user (``request_user_id``), so one user's key never returns another user's
  incident. ``idempotency_key`` keeps the importers' natural keys (``import:<sha1>``), which
  stay global on purpose: the same source record imported twice, by anyone, is one incident.
  Existing API keys are moved over with their author, found from the audit row that
  recorded the incident's creation.
* ``jobs.owner_user_id``: who started a job (``GET /jobs/{id}`` answers them and admins only),
  filled in for existing jobs from ``created_by``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# geo_service.db.models.OPEN_INCIDENT_STATUSES as of this revision (a migration must not
# change meaning when the application's vocabulary changes later).
OPEN = "('reported', 'dispatched', 'accepted', 'on_scene')"


def upgrade() -> None:
    """Repair double assignments, add the invariant index, per-user keys and job owners."""
    # 1. Of several open incidents per responder, the latest dispatch keeps the responder.
    op.execute(
        f"""
        WITH ranked AS (
            SELECT id, responder_id, status,
                   row_number() OVER (PARTITION BY responder_id
                                      ORDER BY dispatched_at DESC NULLS LAST, id) AS n
            FROM incidents WHERE responder_id IS NOT NULL AND status IN {OPEN}
        ), undone AS (
            UPDATE incidents i SET status = 'reported', responder_id = NULL,
                   dispatched_at = NULL, accepted_at = NULL, arrived_at = NULL,
                   updated_at = now()
            FROM ranked r WHERE i.id = r.id AND r.n > 1
            RETURNING i.id, r.responder_id, r.status
        )
        INSERT INTO audit_log (who, action, entity, entity_id, diff)
        SELECT 'migration 0016', 'unassign', 'incident', id::text,
               jsonb_build_object(
                   'before', jsonb_build_object('status', status, 'responder_id', responder_id),
                   'after', jsonb_build_object('status', 'reported'),
                   'reason', 'the responder held another open incident')
        FROM undone
        """
    )
    # 2. An assigned responder is not available.
    op.execute(
        f"""
        UPDATE responders r SET status = 'busy'
        WHERE r.status = 'available' AND EXISTS (
            SELECT 1 FROM incidents i WHERE i.responder_id = r.id AND i.status IN {OPEN})
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX ux_incidents_open_responder ON incidents (responder_id) "
        f"WHERE responder_id IS NOT NULL AND status IN {OPEN}"
    )

    # 3. Client idempotency keys, per user.
    op.add_column("incidents", sa.Column("request_key", sa.String(200)))
    op.add_column(
        "incidents",
        sa.Column("request_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
    )
    op.execute(
        """
        UPDATE incidents i SET request_key = i.idempotency_key, idempotency_key = NULL,
               request_user_id = (
                   SELECT u.id FROM audit_log a
                   JOIN users u ON a.who = u.name || ' (' || u.role || ')'
                   WHERE a.entity = 'incident' AND a.action = 'create'
                     AND a.entity_id = i.id::text
                   ORDER BY a.at LIMIT 1)
        WHERE i.idempotency_key IS NOT NULL AND i.source <> 'import'
        """
    )
    # Rows whose author is unknown keep their key but can no longer be replayed by anyone.
    op.execute(
        "CREATE UNIQUE INDEX ux_incidents_request_key ON incidents (request_user_id, request_key) "
        "WHERE request_key IS NOT NULL"
    )

    # 4. Who started a job.
    op.add_column(
        "jobs",
        sa.Column("owner_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
    )
    op.execute(
        """
        UPDATE jobs j SET owner_user_id = u.id FROM users u
        WHERE j.created_by = u.name || ' (' || u.role || ')'
        """
    )


def downgrade() -> None:
    """Back to global keys (the oldest use of a key keeps it) and no invariant index."""
    op.drop_column("jobs", "owner_user_id")
    op.execute("DROP INDEX ux_incidents_request_key")
    op.execute(
        """
        UPDATE incidents i SET idempotency_key = k.request_key
        FROM (SELECT id, request_key,
                     row_number() OVER (PARTITION BY request_key ORDER BY created_at, id) AS n
              FROM incidents WHERE request_key IS NOT NULL) k
        WHERE i.id = k.id AND k.n = 1 AND i.idempotency_key IS NULL
          AND NOT EXISTS (SELECT 1 FROM incidents o WHERE o.idempotency_key = k.request_key)
        """
    )
    op.drop_column("incidents", "request_user_id")
    op.drop_column("incidents", "request_key")
    op.execute("DROP INDEX ux_incidents_open_responder")
