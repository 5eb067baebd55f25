"""Recipes as data: a release's every setting in one TOML file under ``recipes/`` at the checkout's root.

A recipe names the release it makes (``version``), where its run goes (``out``), the members of its teacher
(``[teacher] members``, written to ``train.teacher``), every :class:`~classmood.ml.train.TrainConfig` field
(``[train]``, with ``[train.augment]`` and ``[train.webcam]``), and the candidates that the selection rule
chooses among (``[release] candidates``, ``out``). A recipe may ``extends`` another and change a few settings
(a variant that is a candidate of the same release). ``classmood train --recipe NAME --set key=value`` runs
one, with settings changed on the command line. Paths inside a recipe are relative to the checkout's root,
where the commands run (``make model``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classmood.ml.augment import AugmentConfig, WebcamConfig
from classmood.ml.train import Logger, TrainConfig, train

RECIPES = "recipes"
CHECKOUT = Path(__file__).resolve().parents[3]  # src/classmood/ml/recipe.py -> the checkout's root


@dataclass(frozen=True)
class Recipe:
    """One recipe, read and resolved (its base merged in, the command line's settings applied)."""

    name: str
    version: str
    out: Path
    train: TrainConfig
    teacher_members: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    release_out: Path = Path("runs/release.pt")
    settings: dict[str, Any] = field(default_factory=dict)  # the merged tables, as read


def find_recipe(name: str) -> Path:
    """The file of recipe ``name``: a path to a .toml file, or a name under ``recipes/`` of the current folder
    or of the checkout this package runs from."""
    if (path := Path(name)).suffix == ".toml" and path.is_file():
        return path
    folders = [Path.cwd() / RECIPES, CHECKOUT / RECIPES]
    for folder in folders:
        if (candidate := folder / f"{name}.toml").is_file():
            return candidate
    known = sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.toml")})
    raise ValueError(f"no recipe {name!r} (known: {', '.join(known) or 'none'}; looked in "
                     f"{', '.join(str(f) for f in dict.fromkeys(folders))})")


def read_settings(name: str) -> dict[str, Any]:
    """The tables of recipe ``name`` with those of the recipes it extends beneath them."""
    path = find_recipe(name)
    with path.open("rb") as f:
        settings = tomllib.load(f)
    base = settings.pop("extends", None)
    return merge(read_settings(base), settings) if base else settings


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, table by table."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_set(assignment: str) -> tuple[list[str], Any]:
    """``key=value`` of ``--set``: a dotted key of the ``[train]`` table and a TOML value (a bare word is a
    string). ``webcam=false`` turns the webcam corruptions off."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {assignment!r}: expected key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip().split("."), value


def apply_sets(settings: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``settings`` with each ``--set key=value`` applied to its ``[train]`` table."""
    train = dict(settings.get("train", {}))
    for assignment in assignments:
        keys, value = parse_set(assignment)
        nested: dict[str, Any] = {keys[-1]: value}
        for key in reversed(keys[:-1]):
            nested = {key: nested}
        train = merge(train, nested)
    return {**settings, "train": train}


def train_config(table: dict[str, Any], version: str = "") -> TrainConfig:
    """The :class:`TrainConfig` of a ``[train]`` table; an unknown setting is refused by name."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown := sorted(set(table) - fields):
        raise ValueError(f"unknown training setting {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    values = {k: v for k, v in table.items() if k not in ("augment", "webcam")}
    values.setdefault("version", version)
    augment = _nested(AugmentConfig, table.get("augment", {}), TrainConfig().augment)
    webcam_table = table.get("webcam", {})
    webcam = None if webcam_table is False else _nested(WebcamConfig, webcam_table, WebcamConfig())
    return TrainConfig(**values, augment=augment, webcam=webcam)


def _nested(kind: type[Any], table: dict[str, Any], default: Any) -> Any:
    """A frozen settings dataclass from its defaults and a table (lists become tuples)."""
    names = {f.name for f in dataclasses.fields(kind)}
    if unknown := sorted(set(table) - names):
        raise ValueError(f"unknown {kind.__name__} setting {', '.join(unknown)}")
    return dataclasses.replace(default, **{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})


def load_recipe(name: str, assignments: list[str] | None = None) -> Recipe:
    """Recipe ``name`` with the command line's ``--set`` assignments applied."""
    settings = apply_sets(read_settings(name), assignments or [])
    version = str(settings.get("version", ""))
    release = settings.get("release", {})
    return Recipe(name=Path(name).stem, version=version, out=Path(settings.get("out", f"runs/{Path(name).stem}")),
                  train=train_config(settings.get("train", {}), version),
                  teacher_members=tuple(settings.get("teacher", {}).get("members", ())),
                  candidates=tuple(release.get("candidates", ())),
                  release_out=Path(release.get("out", "runs/release.pt")), settings=settings)


def plain_recipe(assignments: list[str] | None = None) -> Recipe:
    """No recipe file: :class:`TrainConfig`'s defaults with the ``--set`` assignments."""
    settings = apply_sets({}, assignments or [])
    cfg = train_config(settings["train"])
    return Recipe(name=cfg.model, version=cfg.version, out=Path("runs") / cfg.model, train=cfg, settings=settings)


def write_teacher(recipe: Recipe, data_path: str | Path, log: Logger = print) -> dict[str, Any]:
    """The recipe's teacher file (``train.teacher``) from its members; their PublicTest scores."""
    from classmood.ml.ensemble import build_teacher

    if not recipe.train.teacher or not recipe.teacher_members:
        raise ValueError(f"recipe {recipe.name} has no teacher (train.teacher and [teacher] members)")
    return build_teacher(recipe.teacher_members, data_path, recipe.train.teacher, log=log)


def train_recipe(recipe: Recipe, data_path: str | Path, out: Path | None = None,
                 log: Logger = print) -> dict[str, Any]:
    """Train the recipe's run into ``out`` (default: the recipe's), writing its teacher first when missing."""
    teacher = recipe.train.teacher
    if teacher and not Path(teacher).is_file() and recipe.teacher_members:
        log(f"{teacher} is missing: writing it from {', '.join(recipe.teacher_members)}")
        write_teacher(recipe, data_path, log)
    return train(data_path, out or recipe.out, recipe.train, log=log)
