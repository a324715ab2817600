"""trainings

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trainings',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('config_name', sa.String(length=64), nullable=True),
    sa.Column('config_yaml', sa.Text(), nullable=False),
    sa.Column('datasets_json', sa.Text(), nullable=False),
    sa.Column('resources_json', sa.Text(), nullable=False),
    sa.Column('job_state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('log_tail', sa.Text(), nullable=True),
    sa.Column('remote_dir', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('trainings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trainings_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_trainings_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_trainings_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('trainings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trainings_state'))
        batch_op.drop_index(batch_op.f('ix_trainings_owner'))
        batch_op.drop_index(batch_op.f('ix_trainings_created_at'))

    op.drop_table('trainings')
