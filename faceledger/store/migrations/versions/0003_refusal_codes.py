"""search requests keep a stable refusal code beside the readable reason

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("search_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refusal_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_requests", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
        batch_op.drop_column("refusal_code")
