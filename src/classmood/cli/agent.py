"""``classmood join``: take part in a class from this computer's camera."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def join(
    server: Annotated[str, typer.Argument(help="server URL, e.g. http://192.168.1.10:8000")],
    code: Annotated[str, typer.Argument(help="the session's join code")],
    name: Annotated[str, typer.Option("--name", help="your display name", prompt=True)],
    camera: Annotated[int, typer.Option(help="camera index")] = 0,
    video: Annotated[Path | None, typer.Option(help="read frames from a video file instead of a camera")] = None,
    send_frames: Annotated[bool, typer.Option("--send-frames", help="send frames, not local scores")] = False,
    interval: Annotated[float, typer.Option(help="seconds between frames")] = 1.0,
    spool: Annotated[Path | None, typer.Option(help="file keeping undelivered scores and the participant across "
                                                    "restarts")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="consent given (skip the question)")] = False,
) -> None:
    """Join a class from this computer's camera; by default only emotion scores leave the machine."""
    from classmood.agent import (
        Agent,
        FlushResult,
        ServerClient,
        SessionEnded,
        camera_frames,
        join_or_resume,
        video_frames,
    )

    what = "camera frames" if send_frames else "emotion scores computed on this computer (no images)"
    if not yes and not typer.confirm(f"ClassMood will send {what} to {server} every {interval:g} s. Do you consent?"):
        raise typer.Exit(1)
    client = ServerClient(server)
    joined, resumed = join_or_resume(client, code, name, spool)
    again = "again " if resumed else ""
    typer.echo(f"joined session {joined.session_id} {again}as participant {joined.participant_id}; Ctrl-C to leave")
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
