"""Checkpoints of a training run, the same for every training loop: ``last.pt`` (resumable) and ``best.pt``
(by the selection rule of :mod:`classmood.ml.select`).

One resume rule: a run resumes from the ``last.pt`` in its folder only if that file was written by the same
configuration; another configuration is refused with the differing fields named, so that a changed setting
never silently continues an old run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from classmood.ml.model import EmotionNet, ModelConfig
from classmood.ml.select import selection_key


class ConfigMismatch(ValueError):
    """``last.pt`` was written by another configuration."""


def differing_fields(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """The (dotted) names of the fields whose values differ between two configurations.

    >>> differing_fields({"seed": 0, "augment": {"flip": 0.5}}, {"seed": 1, "augment": {"flip": 0.4}})
    ['augment.flip', 'seed']
    """
    names = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += differing_fields(a, b, f"{prefix}{key}.")
        elif _plain(a) != _plain(b):
            names.append(f"{prefix}{key}")
    return names


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (a configuration read back from a file has lists)."""
    return list(value) if isinstance(value, tuple) else value


def save_last(out: Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Write ``state`` (weights, optimiser, random stream, history) and its configuration to ``out/last.pt``,
    atomically: an interrupted write leaves the previous file."""
    tmp = out / "last.pt.tmp"
    torch.save({**state, "config": config}, tmp)
    tmp.replace(out / "last.pt")


def resume(out: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The state saved in ``out/last.pt``, or ``None`` when there is none; :class:`ConfigMismatch` when it was
    written by another configuration."""
    path = out / "last.pt"
    if not path.is_file():
        return None
    saved: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    if fields := differing_fields(saved.get("config", {}), config):
        raise ConfigMismatch(f"{path} was written by another configuration (differing: {', '.join(fields)}); "
                             "use another output folder, or delete it to start afresh")
    return saved


def keep_best(out: Path, best: dict[str, Any] | None, entry: dict[str, Any], min_fer_acc: float,
              checkpoint: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The better of ``best`` and ``entry`` (a record with its PublicTest ``scores``) by the selection rule.
    When ``entry`` wins, ``checkpoint()`` is saved as ``out/best.pt``; a tie keeps the earlier one."""
    key = selection_key(entry["scores"], min_fer_acc)
    if best is not None and key <= tuple(best["key"]):
        return best
    torch.save(checkpoint(), out / "best.pt")
    return {**entry, "key": list(key)}


def load_checkpoint(path: str | Path) -> EmotionNet:
    """Rebuild a network from ``best.pt`` or ``last.pt`` (EMA weights for ``last.pt`` when it has them)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = EmotionNet(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["ema"] if "ema" in ckpt else ckpt["model"])
    return model.eval()


def recipe_version(path: str | Path) -> str:
    """The release a checkpoint is a candidate for, from its recipe (``train_config.version``)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    version = str(ckpt.get("train_config", {}).get("version", ""))
    if not version:
        raise ValueError(f"{path} names no release version (trained without a recipe): pass --version")
    return version
