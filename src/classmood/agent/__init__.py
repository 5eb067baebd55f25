"""The desktop agent behind ``classmood join``: a local camera, scores computed on this machine.

It talks to the server through its public HTTP API only and imports no server code; capture and
analysis come from :mod:`classmood.vision`.

>>> # client = ServerClient("http://127.0.0.1:8000")
>>> # joined, _ = join_or_resume(client, "ABC234", "Ada", spool=Path("spool.jsonl"))
>>> # Agent(client, joined, spool=Path("spool.jsonl")).run(camera_frames(0, interval_s=1.0))
"""

from __future__ import annotations

from classmood.agent.client import Joined, Pending, Rejected, ServerClient, SessionEnded
from classmood.agent.runner import Agent, FlushResult, camera_frames, join_or_resume, video_frames
from classmood.agent.spool import Spool

__all__ = ["Agent", "FlushResult", "Joined", "Pending", "Rejected", "ServerClient", "SessionEnded", "Spool",
           "camera_frames", "join_or_resume", "video_frames"]
