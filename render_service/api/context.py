"""What one running API holds: its settings, database, task sender and health probe (built once, at start)."""

from __future__ import annotations

from dataclasses import dataclass

from render_service.api.health import HealthProbe
from render_service.db.session import Database
from render_service.queue import TaskSender
from render_service.settings import Settings


@dataclass
class ApiContext:
    """Everything the routes reach through dependencies; unit tests build one with fakes."""

    settings: Settings
    database: Database
    sender: TaskSender
    probe: HealthProbe
