"""The ``classmood bench load`` command (registered by the CLI through :func:`register`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(bench_app: typer.Typer) -> None:
    """Add ``load`` to the ``classmood bench`` group."""
    bench_app.command("load")(bench_load)


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
) -> None:
    """Students stream real JPEG frames over WebSockets; prints frames, stored, lost/duplicated and delays."""
    from classmood.benchmarks.load import format_load, run_load, save_json

    try:
        result = run_load(students, seconds, url=url, email=email, password=password, interval_s=interval,
                          drain_s=drain, server_nice=server_nice)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(format_load(result))
    if json_out:
        save_json(result, json_out)
