"""Server commands: ``serve``, ``purge``, ``users create``, ``db upgrade`` and ``bench server|load|faults``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from classmood.cli.common import DataDirOpt, DbOpt, JsonOpt, server_settings, write_json
from classmood.config import Settings

DEPLOYMENT_NOTICE = ("Before students use it, read docs/DEPLOYMENT.md: where emotion recognition may be used "
                     "(EU AI Act Art. 5(1)(f)) and what students must be told.")


def _browser_host(host: str) -> str:
    # A server bound to every interface is still reached as localhost from this machine.
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host


def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on (0.0.0.0: the whole network)")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    dev: Annotated[bool | None, typer.Option("--dev/--no-dev", help="development mode (cookies over plain HTTP)")]
    = None,
    workers: Annotated[int | None, typer.Option(help="server processes (set CLASSMOOD_REDIS_URL for live events)")]
    = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Run the classroom server; on first start it creates an admin and a demo teacher and prints their logins."""
    import uvicorn

    from classmood.server.app import uvicorn_options
    from classmood.server.bootstrap import prepare_server

    settings = server_settings(data_dir, database_url, host=host, port=port, dev=dev, workers=workers)
    created = prepare_server(settings)
    url = f"http://{_browser_host(settings.host)}:{settings.port}"
    typer.echo(f"ClassMood server: {url}/  (API docs: {url}/docs, database: {settings.database_url.split('?')[0]})")
    if created:
        typer.echo(DEPLOYMENT_NOTICE)
        typer.echo(f"First start: log in at {url}/login with")
        for role, email, password in created:
            typer.echo(f"  {role:8s} email: {email}  password: {password}")
        typer.echo("  (shown once; change them or create users with `classmood users create`)")
    if not settings.dev and settings.host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo("Note: login cookies are Secure-only; serve over HTTPS or pass --dev for plain-HTTP tests.")
    settings = settings.model_copy(update={"auto_migrate": False})
    if settings.workers > 1:
        _export_settings(settings)
        uvicorn.run("classmood.server.app:app_from_env", factory=True, host=settings.host, port=settings.port,
                    workers=settings.workers, log_level="info", **uvicorn_options(settings))
        return
    from classmood.server.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                **uvicorn_options(settings))


def _export_settings(settings: Settings) -> None:
    # Worker processes rebuild their settings from the environment: pass the resolved values on.
    for name, value in settings.model_dump().items():
        os.environ[f"CLASSMOOD_{name.upper()}"] = str(value)


def purge(
    days: Annotated[int | None, typer.Option(help="delete observations older than this (default: retention_days)")]
    = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Delete observations older than the retention period (and participants left without data)."""
    from classmood.server.db import open_database
    from classmood.server.retention import purge as purge_rows

    settings = server_settings(data_dir, database_url)
    keep_days = settings.retention_days if days is None else days
    if keep_days <= 0:
        typer.echo("retention is 0 (keep everything): nothing purged")
        return
    with open_database(settings) as db:
        observations, participants = purge_rows(db, before_ts=time.time() - keep_days * 86400)
    typer.echo(f"purged {observations} observations and {participants} participants older than {keep_days} days")


def users_create(
    email: Annotated[str, typer.Option(help="login e-mail", prompt=True)],
    name: Annotated[str, typer.Option(help="name shown to students", prompt=True)],
    role: Annotated[str, typer.Option(help="teacher or admin")] = "teacher",
    password: Annotated[str | None, typer.Option(help="default: asked for (hidden)")] = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Create a teacher or an admin."""
    from classmood.server.accounts.service import create_user
    from classmood.server.bootstrap import passwords_of
    from classmood.server.db import open_database
    from classmood.server.errors import DomainError

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = server_settings(data_dir, database_url)
    try:
        with open_database(settings) as db:
            user = create_user(db, passwords=passwords_of(settings), email=email, password=password, name=name,
                               role=role)
            typer.echo(f"created {user.role} {user.email} (id {user.id})")
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


def db_upgrade(data_dir: DataDirOpt = None, database_url: DbOpt = None) -> None:
    """Create or migrate the database schema to the newest version."""
    from classmood.server.db import current_revision, open_database

    settings = server_settings(data_dir, database_url)
    with open_database(settings) as db:
        revision = current_revision(db.get_bind().engine)
    typer.echo(f"database at revision {revision}: {settings.database_url.split('?')[0]}")


def bench_server(
    sizes: Annotated[str, typer.Option(help="stored observations for the query timings, e.g. 1000000,10000000")]
    = "1000000",
    backends: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "sqlite,postgresql",
    postgres_url: Annotated[str, typer.Option(help="PostgreSQL URL (a scratch schema is used and dropped)")]
    = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ingest: Annotated[int, typer.Option(help="observations per ingestion measurement")] = 50_000,
    frames: Annotated[int, typer.Option(help="frames posted for the frame-endpoint measurement")] = 40,
    json_out: JsonOpt = None,
) -> None:
    """Ingestion rate, frames/s and histogram/timeline query times on SQLite and PostgreSQL."""
    from classmood.benchmarks.server import ServerBenchConfig, format_server_bench, run_server_bench

    config = ServerBenchConfig(sizes=tuple(int(s) for s in sizes.split(",") if s.strip()),
                               backends=tuple(b.strip() for b in backends.split(",") if b.strip()),
                               postgres_url=postgres_url, ingest_n=ingest, frames=frames)
    result = run_server_bench(config, log=typer.echo)
    typer.echo(format_server_bench(result))
    write_json(result, json_out)


def bench_load(
    students: Annotated[int, typer.Option(help="simulated students, each a WebSocket client")] = 10,
    seconds: Annotated[float, typer.Option(help="how long the students send frames")] = 60.0,
    interval: Annotated[float, typer.Option(help="seconds between two frames of one student")] = 1.0,
    drain: Annotated[float, typer.Option(help="seconds to wait for the last acknowledgements")] = 60.0,
    url: Annotated[str | None, typer.Option(help="target a running server instead of starting one")] = None,
    email: Annotated[str, typer.Option(help="admin email (with --url)")] = "",
    password: Annotated[str, typer.Option(help="admin password (with --url)", envvar="CLASSMOOD_ADMIN_PASSWORD")] = "",
    server_nice: Annotated[int, typer.Option(help="nice level of the server started here")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
    mode: Annotated[str, typer.Option(help="server: students send frames; device: they send scores")] = "server",
    frames: Annotated[str, typer.Option(help="server mode: astronaut (mirrored every other frame, the worst case "
                                             "for the region search) or clip (a webcam stream of two faces)")] = (
        "astronaut"),
    servers: Annotated[int, typer.Option(help="device mode: server processes sharing PostgreSQL and Redis")] = 1,
    dashboards: Annotated[int, typer.Option(help="device mode: dashboards listening")] = 1,
    database_url: Annotated[str, typer.Option(help="device mode: PostgreSQL URL (a fresh schema is used)")] = (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    redis_url: Annotated[str, typer.Option(help="device mode: Redis for several servers")] = "redis://127.0.0.1:6379/0",
    transport: Annotated[str, typer.Option(help="device mode: ws (the student stream), http (POST batches) or "
                                                   "mixed (half each)")] = "ws",
    generators: Annotated[int, typer.Option(help="device mode: load-generator processes (0: one per 1,000 students)")]
    = 0,
    ws_impl: Annotated[str, typer.Option(help="device mode: uvicorn's WebSocket protocol (auto, websockets, "
                                              "websockets-sansio, wsproto)")] = "auto",
) -> None:
    """Students stream frames (server mode) or scores (device mode); prints stored, lost/duplicated and delays."""
    from classmood.benchmarks.load import format_load, run_load, save_json

    if mode == "device":
        from classmood.benchmarks.device_report import format_device_load
        from classmood.benchmarks.load_device import run_device_load

        try:
            device = run_device_load(students, seconds, interval_s=interval, drain_s=min(drain, 30.0),
                                     servers_count=servers, dashboards=dashboards, database_url=database_url,
                                     redis_url=redis_url, transport=transport, generators=generators,
                                     ws_impl=ws_impl)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(format_device_load(device))
        if json_out:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(device.summary(), indent=2))
        return
    if mode != "server":
        raise typer.BadParameter("--mode is server or device")
    try:
        result = run_load(students, seconds, url=url, email=email, password=password, interval_s=interval,
                          drain_s=drain, server_nice=server_nice, frames=frames)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(format_load(result))
    if json_out:
        save_json(result, json_out)


def bench_browser(
    frames: Annotated[int, typer.Option(help="timed frames per thread count")] = 30,
    duty: Annotated[bool, typer.Option("--duty", help="instead: CPU of the student page per second of class")] = False,
    seconds: Annotated[float, typer.Option(help="with --duty: seconds of class measured")] = 60.0,
    still: Annotated[bool, typer.Option("--still", help="with --duty: the faces sit still")] = False,
    hide_preview: Annotated[bool, typer.Option(
        "--hide-preview", help="with --duty: the student hides their picture (not on the old page)")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """Time per 640x480 frame of the on-device pipeline in headless Chromium (shipped vs the old pipeline)."""
    from classmood.benchmarks.browser import format_browser_bench, run_browser_bench
    from classmood.benchmarks.duty import duty_summary, format_duty_bench, run_duty_bench

    summary: Any
    if duty:
        runs = run_duty_bench(seconds=seconds, motion=0.0 if still else 1.0, hide_preview=hide_preview)
        typer.echo(format_duty_bench(runs))
        summary = duty_summary(runs)
    else:
        result = run_browser_bench(frames=frames)
        typer.echo(format_browser_bench(result))
        summary = result.summary()
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2))


def bench_faults(
    scenarios: Annotated[str, typer.Option(help="postgres, redis and/or sqlite, comma-separated")]
    = "postgres,redis,sqlite",
    students: Annotated[int, typer.Option(help="on-device students (half on the stream, half over HTTP)")] = 30,
    seconds: Annotated[float, typer.Option(help="how long the students score")] = 20.0,
    interval: Annotated[float, typer.Option(help="seconds between two scores of one student")] = 1.0,
    fault_at: Annotated[float, typer.Option(help="seconds into the class when the fault starts")] = 5.0,
    down: Annotated[float, typer.Option(help="seconds the database, Redis or disk stays down")] = 5.0,
    json_out: JsonOpt = None,
) -> None:
    """PostgreSQL restarted, Redis restarted, SQLite disk full, each mid-class on private servers: prints sent,
    stored, lost, duplicated, the answers while down and the recovery time."""
    from classmood.benchmarks.fault_class import ClassPlan
    from classmood.benchmarks.faults import run_faults

    plan = ClassPlan(students=students, seconds=seconds, interval_s=interval, fault_at_s=fault_at, down_s=down)
    try:
        results = run_faults([s.strip() for s in scenarios.split(",") if s.strip()], plan=plan, log=typer.echo)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    write_json([r.summary() for r in results], json_out)
    if any(r.outcome.startswith("FAILED") for r in results):
        raise typer.Exit(1)
