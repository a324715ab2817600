"""Settings fail at start naming the setting; the database is migrated and keeps batches, tasks and tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect, select, text

from render_service.db.models import Base, Training
from render_service.db.session import Database, make_engine, migrate
from render_service.settings import SettingsError, load_settings
from render_service.store import batch_public, create_batch, get_batch, list_batches
from render_service.tokens import create_token, list_tokens, owner_of, revoke_tokens
from render_service.training_store import training_public
from semcoat.batch import BatchSpec
from semcoat.errors import InvalidArgument


def test_settings_name_the_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCOAT_MAX_RETRIES", "many")
    with pytest.raises(SettingsError, match="SEMCOAT_MAX_RETRIES"):
        load_settings()
    monkeypatch.delenv("SEMCOAT_MAX_RETRIES")
    monkeypatch.setenv("SEMCOAT_SSH_HOST", "login.example")
    with pytest.raises(SettingsError, match="SEMCOAT_SSH_USER, SEMCOAT_SSH_KEY"):
        load_settings()
    monkeypatch.setenv("SEMCOAT_SSH_HOST", "changeme")
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings()


def test_settings_defaults_need_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCOAT_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.database == f"sqlite:///{tmp_path / 'data' / 'semcoat.db'}"
    assert not settings.slurm_configured and settings.redis_url is None and settings.max_retries == 2


def test_a_relative_data_folder_is_taken_from_where_the_process_started(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEMCOAT_DATA_DIR", "out/service")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "out" / "service"
    monkeypatch.chdir(tmp_path / "..")  # a child started elsewhere is handed the same folder, not a new one
    assert settings.data_dir.is_absolute() and settings.database == f"sqlite:///{tmp_path / 'out/service/semcoat.db'}"


def test_migrated_schema_matches_the_models(db: Database) -> None:
    inspector = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.columns}, table.name


def test_trainings_stored_before_init_from_was_a_column_get_it_from_their_configs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0003")
    engine = make_engine(url)
    configs = {"tuned": yaml.safe_dump({"model": {"init_from": "/runs/a/best.ckpt", "lr": 0.001}}),
               "fresh": "model: {init_from: null}\n", "broken": "model: [unclosed\n"}
    with engine.begin() as connection:
        for training_id, config_yaml in configs.items():
            connection.execute(text(
                "INSERT INTO trainings (id, owner, name, backend, state, config_yaml, datasets_json, resources_json, "
                "job_state, attempts, cancel_requested, created_at) VALUES (:id, 'alice', :id, 'local', 'succeeded', "
                ":config, '[]', '{}', 'done', 1, 0, '2026-12-01 10:00:00')"),
                {"id": training_id, "config": config_yaml})
    engine.dispose()
    db = Database(url)  # migrates to the newest revision
    with db.session() as session:
        found = {t.id: t.init_from for t in session.scalars(select(Training))}
        assert training_public(session.get(Training, "tuned")).init_from == "/runs/a/best.ckpt"  # type: ignore[arg-type]
    assert found == {"tuned": "/runs/a/best.ckpt", "fresh": None, "broken": None}
    db.dispose()


def test_batches_are_stored_with_their_tasks_and_seen_by_their_owner_only(db: Database) -> None:
    spec = BatchSpec.from_dict({"name": "p91", "count": 5})
    with db.session() as session:
        batch = create_batch(session, "alice", spec, "local", {}, images_per_task=2)
        batch_id = batch.id
    with db.session() as session:
        mine = get_batch(session, batch_id, "alice")
        assert mine is not None and get_batch(session, batch_id, "bob") is None
        assert [(t.start, t.count) for t in mine.tasks] == [(0, 2), (2, 2), (4, 1)]
        public = batch_public(mine)
        assert (public.state, public.count, public.tasks.total, public.tasks.pending) == ("queued", 5, 3, 3)
        create_batch(session, "alice", BatchSpec.from_dict({"name": "second", "count": 1}), "local", {}, 1)
        rows, total = list_batches(session, "alice", limit=1, offset=0)
        assert total == 2 and [r.name for r in rows] == ["second"]
        assert list_batches(session, "bob", 10, 0) == ([], 0)
        assert list_batches(session, "alice", 10, 0, state="succeeded") == ([], 0)


def test_tokens_are_stored_hashed_and_can_be_revoked(db: Database) -> None:
    with db.session() as session:
        row, token = create_token(session, "alice")
        assert token.startswith("sct_") and token not in row.token_sha256
    with db.session() as session:
        assert owner_of(session, token) == "alice"
        assert owner_of(session, token + "x") is None and owner_of(session, "") is None
        assert all(token not in (t.token_sha256, t.owner) for t in list_tokens(session))
        assert revoke_tokens(session, owner="alice") == 1
    with db.session() as session:
        assert owner_of(session, token) is None
        with pytest.raises(InvalidArgument, match="user name"):
            create_token(session, "bad name; rm -rf")


def test_threads_starting_together_share_one_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's first tasks run in threads at once: they must build one runtime (one migration), not two."""
    import threading

    from render_service.worker import runtime as runtime_mod

    monkeypatch.setenv("SEMCOAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMCOAT_REDIS_URL", "redis://127.0.0.1:1/0")  # never connected to by building the runtime
    runtime_mod._build_runtime.cache_clear()
    built: list[object] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def first_task() -> None:
        gate.wait()
        try:
            built.append(runtime_mod.runtime())
        except BaseException as exc:  # a failed migration in one thread is what this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=first_task) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and len(built) == 4
        assert all(r is built[0] for r in built)
        assert inspect(built[0].db.engine).has_table("batches")  # type: ignore[attr-defined]
    finally:
        runtime_mod._build_runtime.cache_clear()
