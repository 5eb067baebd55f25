"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from classmood.config import Settings, load_settings

DEFAULT_DATA = Path("../shared/data/fer2013")
DataOpt = Annotated[Path, typer.Option("--data", help="FER2013: fer2013.npz, fer2013.csv or a train/ test/ folder")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="write the figures as JSON here")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="folder of the SQLite file and secret key")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")]


def write_json(result: Any, target: Path | None) -> None:
    """Save a benchmark's figures as JSON when ``--json`` was given."""
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2))


def server_settings(data_dir: Path | None, database_url: str | None, **more: Any) -> Settings:
    """Settings from the environment with the command-line options on top."""
    return load_settings(data_dir=data_dir, database_url=database_url, **more)
