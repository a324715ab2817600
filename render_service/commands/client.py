"""The REST client's commands: ``semcoat submit``, ``status``, ``fetch``, ``cancel`` (SEMCOAT_URL, SEMCOAT_TOKEN)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from semcoat_cli.errors import EXIT_FAILED, EXIT_USAGE, fail, user_errors

if TYPE_CHECKING:
    from render_service.client import ServiceClient
    from render_service.schemas import BatchPublic

FINAL = ("succeeded", "failed", "cancelled")


def _client() -> ServiceClient:
    from render_service.client import ServiceClient

    return ServiceClient()


def _code(status_code: int | None) -> int:
    """4xx: the request was wrong (usage); anything else (unreachable, 5xx): it failed."""
    return EXIT_USAGE if status_code is not None and 400 <= status_code < 500 else EXIT_FAILED


def _show(batch: BatchPublic) -> str:
    t = batch.tasks
    lines = [f"{batch.id}  {batch.name}  {batch.state}  ({batch.backend})",
             f"  images: {batch.images_done}/{batch.count} done",
             f"  tasks:  {t.done}/{t.total} done, {t.running} running, {t.pending} pending, {t.failed} failed, "
             f"{t.retried} retried"]
    if batch.slurm_job_ids:
        lines.append(f"  slurm jobs: {', '.join(map(str, batch.slurm_job_ids))}")
    lines.append(f"  created {batch.created_at:%Y-%m-%d %H:%M:%S}"
                 + (f", started {batch.started_at:%H:%M:%S}" if batch.started_at else "")
                 + (f", finished {batch.finished_at:%H:%M:%S}" if batch.finished_at else ""))
    if batch.error:
        lines.append(f"  error: {batch.error}")
    return "\n".join(lines)


def wait_for(client: ServiceClient, batch: BatchPublic, poll_s: float) -> BatchPublic:
    """Follow ``batch`` with a progress bar of images done until it ends; returns its final state."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(f"{batch.name} {batch.state}", total=batch.count)
        while batch.state not in FINAL:
            time.sleep(poll_s)
            batch = client.batch(batch.id)
            progress.update(bar, completed=batch.images_done, description=f"{batch.name} {batch.state}")
    return batch


def submit(
    batch_file: Path = typer.Argument(..., help="A BatchSpec JSON file (see `semcoat spec preset`)."),
    backend: str = typer.Option("local", help="'local' (the server's processes) or 'slurm' (the cluster)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the batch with a progress bar until it ends."),
    poll_s: float = typer.Option(2.0, "--poll-s", min=0.1, help="Seconds between polls with --wait."),
) -> None:
    """Submit BATCH_FILE to the render service; prints the batch id (with --wait: ends 0 only if it succeeded)."""
    from render_service.client import ServiceError
    from semcoat.batch import read_json

    if backend not in ("local", "slurm"):
        raise fail(f"--backend: {backend!r} is not a backend; accepted: local, slurm")
    with user_errors(flags={"path": "BATCH_FILE"}):
        spec = read_json(batch_file)
    try:
        with _client() as client:
            batch = client.submit(spec, backend=backend)
            typer.echo(batch.id)
            typer.echo(f"submitted {batch.name}: {batch.count} images, {batch.tasks.total} task(s) on {backend}",
                       err=True)
            if wait:
                batch = wait_for(client, batch, poll_s)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    if wait:
        typer.echo(_show(batch), err=True)
        if batch.state != "succeeded":
            raise typer.Exit(EXIT_FAILED)


def status(batch_id: str = typer.Argument(None, help="A batch id; without it, your latest batches.",
                                          show_default=False)) -> None:
    """Show one batch in detail, or a table of your latest batches."""
    from render_service.client import ServiceError

    try:
        with _client() as client:
            if batch_id:
                typer.echo(_show(client.batch(batch_id)))
                return
            page = client.batches(limit=50)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    typer.echo(f"{'ID':<16}  {'NAME':<24} {'STATE':<10} {'IMAGES':>13}  CREATED")
    for b in page.items:
        typer.echo(f"{b.id:<16}  {b.name[:24]:<24} {b.state:<10} {f'{b.images_done}/{b.count}':>13}  "
                   f"{b.created_at:%Y-%m-%d %H:%M}")
    if page.total > len(page.items):
        typer.echo(f"({len(page.items)} of {page.total} shown)", err=True)


def fetch(
    batch_id: str = typer.Argument(..., help="The batch id."),
    out: Path = typer.Option(..., "--out", help="Folder to copy the dataset into (resumes what is there)."),
) -> None:
    """Copy a batch's dataset folder from the service into --out (files already there are kept), then check it
    with the dataset checker. Ends 0 when the batch succeeded and the folder is complete and valid."""
    from render_service.client import ServiceError
    from semcoat.dataset import check_dataset

    try:
        with _client() as client:
            batch = client.batch(batch_id)
            result = client.fetch(batch_id, out)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    except OSError as exc:
        raise fail(f"--out: cannot write into {out} ({exc.strerror})") from exc
    typer.echo(f"{result.downloaded} file(s) downloaded ({result.bytes_downloaded / 1e6:.1f} MB), "
               f"{result.skipped} already there", err=True)
    report = check_dataset(out)
    if batch.state != "succeeded":
        typer.echo(f"batch {batch_id} is {batch.state}: {report.complete} of {batch.count} images fetched; "
                   + ("run the fetch again once it has finished" if batch.state not in FINAL else
                      (batch.error or "it will not finish")), err=True)
        raise typer.Exit(EXIT_FAILED)
    if not report.ok:
        problems = "\n  - ".join(report.problems[:20])
        raise fail(f"{out} fails the dataset check:\n  - {problems}", EXIT_FAILED)
    typer.echo(f"{out}: {report.complete} of {report.expected} images, dataset check passed", err=True)


def cancel(batch_id: str = typer.Argument(..., help="The batch id.")) -> None:
    """Cancel a batch (images already rendered stay)."""
    from render_service.client import ServiceError

    try:
        with _client() as client:
            batch = client.cancel(batch_id)
    except ServiceError as exc:
        raise fail(str(exc), _code(exc.status_code)) from exc
    typer.echo(f"{batch.id}: {'cancel requested' if batch.state not in FINAL else 'already ' + batch.state}")


def register(app: typer.Typer) -> None:
    """Add ``submit``, ``status``, ``fetch`` and ``cancel`` to the ``semcoat`` app."""
    for command in (submit, status, fetch, cancel):
        app.command(command.__name__)(command)
