"""The ``classmood`` command. Each command parses its options, calls one library function and prints.

The commands live in this package only (``model``, ``vision``, ``server``, ``agent``), and are listed
here: the library packages know nothing of Typer or Rich.
"""

from __future__ import annotations

import typer

from classmood.cli import agent, model, server, vision

app = typer.Typer(help="ClassMood: how does the online class feel?", no_args_is_help=True,
                  pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Benchmarks that print figures and ratios against peers.", no_args_is_help=True)
users_app = typer.Typer(help="Manage teachers and admins.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)

app.command()(server.serve)
app.command("analyze")(vision.analyze)
app.command()(agent.join)
app.command()(model.train)
app.command()(model.evaluate)
app.command()(model.export)
app.command()(model.quantize)
app.command()(model.finetune)
app.command()(model.teacher)
app.command()(model.choose)
app.command()(server.purge)
app.add_typer(users_app, name="users")
users_app.command("create")(server.users_create)
app.add_typer(db_app, name="db")
db_app.command("upgrade")(server.db_upgrade)
app.add_typer(bench_app, name="bench")
bench_app.command("model")(model.bench_model)
bench_app.command("pipeline")(vision.bench_pipeline)
bench_app.command("server")(server.bench_server)
bench_app.command("load")(server.bench_load)
bench_app.command("browser")(server.bench_browser)
bench_app.command("faults")(server.bench_faults)


def main() -> None:
    """Entry point of the ``classmood`` console script."""
    app()
