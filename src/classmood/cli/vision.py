"""`classmood analyze` and `classmood bench pipeline`: parse, call the vision library, print (rich progress bars).

``classmood analyze class.mp4 photos/ --format csv --output faces.csv --every 1s --report report/``
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from classmood.cli.common import DEFAULT_DATA, JsonOpt, write_json
from classmood.vision.tracking import DEFAULT_SMOOTH_WINDOW_S

if TYPE_CHECKING:
    from rich.progress import Progress

    from classmood.vision.pipeline import EmotionAnalyzer, FrameResult
    from classmood.vision.video import Source



def analyze(
    paths: Annotated[list[Path] | None, typer.Argument(help="images, videos (mp4, avi, webm, mov) or folders")] = None,
    camera: Annotated[int | None, typer.Option("--camera", help="analyse this camera (OpenCV index)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
    every: Annotated[str, typer.Option(help="videos: a frame count (10) or an interval (1s, 0.5s)")] = "1s",
    report: Annotated[Path | None, typer.Option(help="write histograms, a timeline and the table here")] = None,
    smooth: Annotated[float, typer.Option(
        help="videos and cameras: average each tracked face's probabilities over this many seconds (0: raw)",
    )] = DEFAULT_SMOOTH_WINDOW_S,
    head: Annotated[str | None, typer.Option(help="model head: crowd (default: what people see) or fer2013")] = None,
    max_side: Annotated[int | None, typer.Option(help="detect at this size (0: full); default by frame size")] = None,
    duration: Annotated[float | None, typer.Option(help="camera: stop after this many seconds")] = None,
) -> None:
    """Find faces and their emotions in images, videos and cameras: one JSON object (or CSV row) per face.

    Bad inputs are reported on stderr, one line each; the others are still analysed; exit code 1 then.
    """
    # FFmpeg's own log lines ("moov atom not found") would clutter the one-line errors printed below.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from classmood.vision.report import FORMATS
    from classmood.vision.video import Source, expand_inputs, parse_every

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose from {', '.join(FORMATS)}", param_hint="--format")
    try:
        parse_every(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every") from exc
    if not paths and camera is None:
        raise typer.BadParameter("give at least one path or --camera", param_hint="PATHS")
    sources, errors = expand_inputs(list(paths or []))
    if camera is not None:
        sources.append(Source("camera", f"camera:{camera}", camera=camera))
    for line in errors:
        typer.echo(f"error: {line}", err=True)
    if not smooth >= 0:
        raise typer.BadParameter("a number of seconds >= 0", param_hint="--smooth")
    failed = _run(sources, fmt=fmt, output=output, every=every, report=report, smooth=smooth, max_side=max_side,
                  duration=duration, head=head)
    raise typer.Exit(1 if errors or failed else 0)


def _run(sources: list[Source], *, fmt: str, output: Path | None, every: str, report: Path | None, smooth: float,
         max_side: int | None, duration: float | None, head: str | None = None) -> int:
    """Analyse every source, streaming rows; returns the number of sources that failed."""
    from classmood.vision.classifier import EmotionClassifier
    from classmood.vision.pipeline import EmotionAnalyzer
    from classmood.vision.report import RowWriter
    from classmood.vision.video import MediaError

    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
    try:
        classifier = EmotionClassifier(head=head)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--head") from exc
    analyzer = EmotionAnalyzer(max_side="auto" if max_side is None else max_side, classifier=classifier)
    frames: list[FrameResult] = []
    failed = 0
    with ExitStack() as stack:
        stream: IO[str] = stack.enter_context(output.open("w", newline="", encoding="utf-8")) if output else sys.stdout
        writer = stack.enter_context(RowWriter(stream, fmt))
        progress = stack.enter_context(_progress(len(sources)))
        for source in sources:
            try:
                for frame in _frames(analyzer, source, every, smooth, duration, progress):
                    writer.write(frame)
                    frames.append(frame)
            except MediaError as exc:  # its message names the file
                failed += 1
                _error(progress, str(exc))
            except Exception as exc:  # one odd file must not stop the others
                failed += 1
                _error(progress, f"{source.name}: {type(exc).__name__}: {exc}")
            except KeyboardInterrupt:
                _error(progress, f"{source.name}: interrupted; rows so far are kept")
                break
            if progress:
                progress.advance(progress.task_ids[0])
    if report:
        _write_report(frames, report)
    return failed


def _frames(analyzer: EmotionAnalyzer, source: Source, every: str, smooth: float | None, duration: float | None,
            progress: Progress | None) -> Iterator[FrameResult]:
    """The analysed frames of one source, with a progress task for videos."""
    from classmood.vision.pipeline import FrameResult
    from classmood.vision.video import camera_frames, read_frames, read_image, sniff

    kind = sniff(source.path) if source.kind == "unknown" and source.path else source.kind
    if kind == "image" and source.path:
        yield FrameResult(0, 0.0, tuple(analyzer.analyze(read_image(source.path))), source.name)
        return
    frames = camera_frames(source.camera or 0, every, duration) if kind == "camera" else read_frames(source.path or "",
                                                                                                  every)
    task = progress.add_task(Path(source.name).name, total=_expected(source, every)) if progress else None
    try:
        for result in analyzer.track(frames, window_s=smooth, source=source.name):
            if progress and task is not None:
                progress.advance(task)
            yield result
    finally:
        if progress and task is not None:
            progress.remove_task(task)


def _expected(source: Source, every: str) -> float | None:
    """How many frames a video will give, for the progress bar's ETA (``None`` when unknown)."""
    from classmood.vision.video import parse_every, video_length

    if source.kind != "video" or source.path is None:
        return None
    fps, count = video_length(source.path)
    step = parse_every(every)
    if step.frames:
        return -(-count // step.frames) if count else None
    return count / fps / (step.seconds or 1) + 1 if count and fps else None


def _progress(total: int) -> Progress | nullcontext[None]:
    """A rich progress display on stderr: one bar over the inputs, one per video."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return nullcontext()  # logs and pipes get the error lines only, not redrawn bars
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console, transient=True)
    progress.add_task("inputs", total=total)
    return progress


def _error(progress: Progress | None, line: str) -> None:
    if progress:
        progress.console.print(f"error: {line}", markup=False, highlight=False)
    else:
        typer.echo(f"error: {line}", err=True)


def _write_report(frames: list[FrameResult], folder: Path) -> None:
    from classmood.vision.pipeline import results_to_dataframe
    from classmood.vision.report import write_report

    written = write_report(results_to_dataframe(frames), folder)
    typer.echo(f"report: {len(written)} files in {folder}", err=True)


def bench_pipeline(
    data: Annotated[Path, typer.Option("--data", help="FER2013: fer2013.npz, fer2013.csv or a folder")] = DEFAULT_DATA,
    repeats: Annotated[int, typer.Option(help="timed runs per frame (median reported)")] = 30,
    grids: Annotated[int, typer.Option(help="5x5 galleries of FER2013 PrivateTest faces")] = 8,
    limit: Annotated[int, typer.Option(help="faces per split for the crop study (0: all)")] = 1500,
    json_out: JsonOpt = None,
) -> None:
    """Speed, detection recall and accuracy of detect-then-classify, next to the `fer` package's pipeline."""
    from classmood.benchmarks.pipeline import format_pipeline_bench, run_pipeline_bench

    result = run_pipeline_bench(data, repeats=repeats, grids=grids, limit=limit,
                                log=lambda line: typer.echo(line, err=True))
    typer.echo(format_pipeline_bench(result))
    write_json(result, json_out)
