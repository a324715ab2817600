"""training init_from: the checkpoint a training's weights start from, kept apart from its config

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import yaml
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _init_from(config_yaml: str | None) -> str | None:
    """``model.init_from`` of a stored config (frozen here as it read at this revision)."""
    try:
        doc = yaml.safe_load(config_yaml or "")
    except yaml.YAMLError:
        return None
    model = doc.get('model') if isinstance(doc, dict) else None
    value = model.get('init_from') if isinstance(model, dict) else None
    return value if isinstance(value, str) and value else None


def upgrade() -> None:
    with op.batch_alter_table('trainings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('init_from', sa.Text(), nullable=True))
    # trainings stored before: read once from their configs, so listing them never parses YAML
    bind = op.get_bind()
    trainings = sa.table('trainings', sa.column('id', sa.String), sa.column('config_yaml', sa.Text),
                         sa.column('init_from', sa.Text))
    for training_id, config_yaml in bind.execute(sa.select(trainings.c.id, trainings.c.config_yaml)).all():
        init_from = _init_from(config_yaml)
        if init_from is not None:
            bind.execute(trainings.update().where(trainings.c.id == training_id).values(init_from=init_from))


def downgrade() -> None:
    with op.batch_alter_table('trainings', schema=None) as batch_op:
        batch_op.drop_column('init_from')
