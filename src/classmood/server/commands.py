"""Server commands of the ``classmood`` CLI: serve, purge, users create, db upgrade, join, bench server.

``classmood.cli`` imports this module and calls :func:`register`. Each command parses its options,
calls one library function and prints.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from classmood.config import Settings, load_settings

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="folder of the SQLite file and secret key")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")]


def _settings(data_dir: Path | None, database_url: str | None, **more: Any) -> Settings:
    return load_settings(data_dir=data_dir, database_url=database_url, **more)


def _browser_host(host: str) -> str:
    # A server bound to every interface is still reached as localhost from this machine.
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host


def prepare_server(settings: Settings) -> list[tuple[str, str, str]]:
    """Migrate the database and, when it has no users, create the first admin and a demo teacher."""
    from classmood.server.accounts.service import bootstrap_users
    from classmood.server.db import make_engine, make_session_factory, upgrade
    from classmood.server.security import Passwords, generate_password

    engine = make_engine(settings.database_url)
    upgrade(engine)
    with make_session_factory(engine)() as db:
        created = bootstrap_users(db, passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
                                  admin_email=settings.admin_email, admin_password=settings.admin_password,
                                  generate=generate_password)
    engine.dispose()
    return created


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

    settings = _settings(data_dir, database_url, host=host, port=port, dev=dev, workers=workers)
    created = prepare_server(settings)
    url = f"http://{_browser_host(settings.host)}:{settings.port}"
    typer.echo(f"ClassMood server: {url}/  (API docs: {url}/docs, database: {settings.database_url.split('?')[0]})")
    if created:
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
                    workers=settings.workers, log_level="info")
        return
    from classmood.server.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


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
    from classmood.server.db import make_engine, make_session_factory, upgrade
    from classmood.server.observations.service import purge as purge_rows

    settings = _settings(data_dir, database_url)
    keep_days = settings.retention_days if days is None else days
    if keep_days <= 0:
        typer.echo("retention is 0 (keep everything): nothing purged")
        return
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with make_session_factory(engine)() as db:
        observations, participants = purge_rows(db, before_ts=time.time() - keep_days * 86400)
    engine.dispose()
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
    from classmood.server.db import make_engine, make_session_factory, upgrade
    from classmood.server.errors import DomainError
    from classmood.server.security import Passwords

    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings(data_dir, database_url)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with make_session_factory(engine)() as db:
            user = create_user(db, passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
                               email=email, password=password, name=name, role=role)
            typer.echo(f"created {user.role} {user.email} (id {user.id})")
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def db_upgrade(data_dir: DataDirOpt = None, database_url: DbOpt = None) -> None:
    """Create or migrate the database schema to the newest version."""
    from classmood.server.db import current_revision, make_engine, upgrade

    settings = _settings(data_dir, database_url)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    typer.echo(f"database at revision {current_revision(engine)}: {settings.database_url.split('?')[0]}")
    engine.dispose()


def join(
    server: Annotated[str, typer.Argument(help="server URL, e.g. http://192.168.1.10:8000")],
    code: Annotated[str, typer.Argument(help="the session's join code")],
    name: Annotated[str, typer.Option("--name", help="your display name", prompt=True)],
    camera: Annotated[int, typer.Option(help="camera index")] = 0,
    video: Annotated[Path | None, typer.Option(help="read frames from a video file instead of a camera")] = None,
    send_frames: Annotated[bool, typer.Option("--send-frames", help="send frames, not local scores")] = False,
    interval: Annotated[float, typer.Option(help="seconds between frames")] = 1.0,
    spool: Annotated[Path | None, typer.Option(help="JSONL file keeping undelivered scores across restarts")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="consent given (skip the question)")] = False,
) -> None:
    """Join a class from this computer's camera; by default only emotion scores leave the machine."""
    from classmood.server.agent import Agent, FlushResult, ServerClient, SessionEnded, camera_frames, video_frames

    what = "camera frames" if send_frames else "emotion scores computed on this computer (no images)"
    if not yes and not typer.confirm(f"ClassMood will send {what} to {server} every {interval:g} s. Do you consent?"):
        raise typer.Exit(1)
    client = ServerClient(server)
    joined = client.join(code, name)
    typer.echo(f"joined session {joined.session_id} as participant {joined.participant_id}; Ctrl-C to leave")
    agent = Agent(client, joined, send_frames=send_frames, spool=spool)
    frames = video_frames(video, interval) if video else camera_frames(camera, interval)

    def report(result: FlushResult) -> None:
        state = f"offline ({result.error}), " if result.error else ""
        typer.echo(f"{state}delivered {agent.delivered}, waiting {result.pending}")

    try:
        agent.run(frames, flush_every_s=max(interval * 5, 2.0), on_flush=report)
    except SessionEnded as exc:
        typer.echo(f"session over: {exc}")
    except KeyboardInterrupt:
        result = agent.flush()
        typer.echo(f"left; {result.pending} item(s) undelivered" + (f" (kept in {spool})" if spool else ""))
    finally:
        client.close()


def bench_server(
    sizes: Annotated[str, typer.Option(help="stored observations for the query timings, e.g. 1000000,10000000")]
    = "1000000",
    backends: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "sqlite,postgresql",
    postgres_url: Annotated[str, typer.Option(help="PostgreSQL URL (a scratch schema is used and dropped)")]
    = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ingest: Annotated[int, typer.Option(help="observations per ingestion measurement")] = 50_000,
    frames: Annotated[int, typer.Option(help="frames posted for the frame-endpoint measurement")] = 40,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")] = None,
) -> None:
    """Ingestion rate, frames/s and histogram/timeline query times on SQLite and PostgreSQL."""
    from classmood.benchmarks.server import ServerBenchConfig, format_server_bench, run_server_bench

    config = ServerBenchConfig(sizes=tuple(int(s) for s in sizes.split(",") if s.strip()),
                               backends=tuple(b.strip() for b in backends.split(",") if b.strip()),
                               postgres_url=postgres_url, ingest_n=ingest, frames=frames)
    result = run_server_bench(config, log=typer.echo)
    typer.echo(format_server_bench(result))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the server commands to the ``classmood`` CLI."""
    app.command()(serve)
    app.command()(purge)
    app.command()(join)
    users = typer.Typer(help="Manage teachers and admins.", no_args_is_help=True)
    users.command("create")(users_create)
    app.add_typer(users, name="users")
    database = typer.Typer(help="Database schema.", no_args_is_help=True)
    database.command("upgrade")(db_upgrade)
    app.add_typer(database, name="db")
    bench_app.command("server")(bench_server)
    try:  # the web pages contribute `bench load`
        from classmood.server.web import commands as web_commands
    except ImportError:
        return
    web_commands.register(bench_app)
