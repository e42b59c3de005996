"""watch: enrolled subjects (templates only), watch runs and their alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watch_subjects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.Integer(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removal_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_watch_subjects_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["removed_by"], ["users.id"], name=op.f("fk_watch_subjects_removed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_subjects")),
    )
    op.create_table(
        "watch_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["started_by"], ["users.id"], name=op.f("fk_watch_runs_started_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_runs")),
    )
    with op.batch_alter_table("watch_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watch_runs_status"), ["status"])

    op.create_table(
        "watch_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("page_title", sa.Text(), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warc_record_id", sa.String(length=200), nullable=True),
        sa.Column("warc_digest", sa.String(length=200), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("evidence_file", sa.Text(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["watch_runs.id"], name=op.f("fk_watch_alerts_run_id_watch_runs")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["watch_subjects.id"],
            name=op.f("fk_watch_alerts_subject_id_watch_subjects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_alerts")),
    )
    with op.batch_alter_table("watch_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watch_alerts_content_hash"), ["content_hash"])
        batch_op.create_index(batch_op.f("ix_watch_alerts_run_id"), ["run_id"])
        batch_op.create_index(batch_op.f("ix_watch_alerts_subject_id"), ["subject_id"])


def downgrade() -> None:
    op.drop_table("watch_alerts")
    op.drop_table("watch_runs")
    op.drop_table("watch_subjects")
