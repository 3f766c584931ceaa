"""Disclosure control keyed by the published cell, not by its records (issue 13 review).

With keys summed over a cell's records, every record added to a cell drew a new rounding for
it: someone who may add households (a grid worker) and read an aggregate could add one at a time
and narrow the true count down to one value. Now the rounding of a published cell depends on
the cell's identity (an area, an H3 cell, a move between two grids) and a secret of the
deployment: adding records moves the count, never the rounding threshold, so no number of
additions pins a small count down (docs/security.md).

``disclosure_key(identity text)`` returns a 32-bit key, HMAC-SHA256 of the identity under the
secret kept in ``disclosure_secret`` (one row, drawn here; the application role may read it, as
it may read the rows the counts come from).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the secret and the key function."""
    op.execute(
        "CREATE TABLE disclosure_secret ("
        " id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),"
        " secret bytea NOT NULL)"
    )
    op.execute("INSERT INTO disclosure_secret (secret) VALUES (gen_random_bytes(32))")
    # the record keys of 0014 are no longer used
    op.execute("ALTER TABLE households DROP COLUMN dc_key")
    op.execute("ALTER TABLE rental_units DROP COLUMN dc_key")
    op.execute("ALTER TABLE boundary_crosswalks DROP COLUMN key_sum")
    op.execute(
        """
        CREATE FUNCTION disclosure_key(identity text) RETURNS bigint
        LANGUAGE sql STABLE PARALLEL SAFE
        SET search_path = public, pg_temp
        AS $$
          SELECT ('x' || left(encode(hmac(convert_to(identity, 'UTF8'), s.secret, 'sha256'),
                                     'hex'), 8))::bit(32)::bigint
          FROM disclosure_secret s
        $$
        """
    )
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geo_app') THEN "
        "GRANT SELECT ON disclosure_secret TO geo_app; "
        "REVOKE INSERT, UPDATE, DELETE ON disclosure_secret FROM geo_app; "
        "GRANT EXECUTE ON FUNCTION disclosure_key(text) TO geo_app; END IF; END $$"
    )


def downgrade() -> None:
    """Drop the key function and the secret."""
    op.execute("DROP FUNCTION disclosure_key(text)")
    op.execute("DROP TABLE disclosure_secret")
    for table in ("households", "rental_units"):
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN dc_key bigint NOT NULL "
            "DEFAULT floor(random() * 4294967296)::bigint"
        )
    op.execute("ALTER TABLE boundary_crosswalks ADD COLUMN key_sum numeric")
