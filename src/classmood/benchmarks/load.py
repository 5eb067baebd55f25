"""Load benchmark: N simulated students stream real JPEG frames over WebSockets while a dashboard listens.

It starts a ClassMood server in a child process (or targets ``url``), creates a teacher, a course and a
live session through the API, and runs N students as real WebSocket clients (one asyncio task each,
frames at ``interval_s``, starts spread over one interval) plus one SSE listener that stands for the
teacher's dashboard. It then asks the API how many observations were stored and reports frames sent,
acknowledged, stored, lost and duplicated, and the delays frame-sent → ack and frame-sent → dashboard event.
Like the student page, a student whose connection drops reconnects and re-sends its unacknowledged frames;
"lost" counts acknowledged frames with a face that are not in the CSV export, "duplicated" frames stored twice.

>>> pct([1.0, 2.0, 3.0, 4.0], 50)
2.5
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import numpy.typing as npt

from classmood.benchmarks.clients import Setup, create_session, settle, sse_events
from classmood.benchmarks.cpu import process_cpu_s
from classmood.benchmarks.servers import local_server_process, tls

FRAME_WIDTH = 320  # the student page's (student.js): frames are downscaled before they leave the device
FRAME_SOURCES = ("astronaut", "clip")


@dataclass
class LoadResult:
    """Figures of one load run; delays in seconds, full precision (rounded only by :func:`format_load`)."""

    students: int
    seconds: float
    interval_s: float
    frames_sent: int = 0
    acks: int = 0
    errors: int = 0
    faces_acked: int = 0
    expected: int = 0
    no_face: int = 0
    duplicates_acked: int = 0
    shed: int = 0  # acknowledged as not analysed: the server was overloaded (latest frame wins, none too old)
    resent: int = 0
    retried: int = 0
    reconnects: int = 0
    unacked: int = 0
    stored: int = 0
    stored_unacked: int = 0
    lost: int = 0
    duplicated: int = 0
    dashboard_events: int = 0
    dashboard_reconnects: int = 0
    ack_delays: list[float] = field(default_factory=list, repr=False)
    dashboard_delays: list[float] = field(default_factory=list, repr=False)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0  # the server process's CPU over the run (0 for a server elsewhere, ``url``)
    frames: str = "astronaut"

    @property
    def analysed(self) -> int:
        """Frames the server analysed: acknowledged, neither shed nor a duplicate of one stored before."""
        return self.acks - self.shed - self.duplicates_acked

    def summary(self) -> dict[str, Any]:
        """The figures without the raw delay lists, plus medians and 95th percentiles."""
        out = delay_summary(self)
        out["frames_per_s"] = self.frames_sent / self.seconds if self.seconds else 0.0
        out["acks_per_s"] = self.acks / self.wall_s if self.wall_s else 0.0
        out["analysed"] = self.analysed
        out["analysed_per_s"] = self.analysed / self.wall_s if self.wall_s else 0.0
        out["server_cpu_ms_per_frame"] = 1000 * self.server_cpu_s / self.analysed if self.analysed else None
        out["sustained"] = self.sustained()
        return out

    def sustained(self) -> bool:
        """The server kept up: every frame acknowledged, 95 % of them within two frame intervals."""
        p95 = pct(self.ack_delays, 95)
        return self.unacked == 0 and self.errors == 0 and p95 is not None and p95 <= 2 * self.interval_s


def delay_summary(result: Any) -> dict[str, Any]:
    """A result dataclass's figures without its ``*_delays`` lists, plus the median and 95th percentile of its
    ``ack_delays`` and ``dashboard_delays`` (both load benchmarks report them the same way)."""
    out = {k: v for k, v in asdict(result).items() if not k.endswith("_delays")}
    for name in ("ack", "dashboard"):
        delays = getattr(result, f"{name}_delays")
        out[f"{name}_delay_median_s"] = pct(delays, 50)
        out[f"{name}_delay_p95_s"] = pct(delays, 95)
    return out


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation), ``None`` for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def astronaut_jpegs(count: int = 8, width: int = FRAME_WIDTH) -> list[bytes]:
    """``count`` different JPEGs of scikit-image's astronaut (shifts, brightness, mirror), ``width`` px wide.

    The worst case for the server's region search: every other frame is mirrored, so no face is where it was.
    """
    try:
        from skimage import data
    except ModuleNotFoundError as exc:  # scikit-image is a test extra
        raise RuntimeError("the load benchmark needs scikit-image (pip install scikit-image)") from exc
    base = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    out: list[bytes] = []
    for i in range(count):
        img = np.roll(base, (i % 4) * 6 - 9, axis=1)
        img = cv2.convertScaleAbs(img, alpha=1.0, beta=(i % 3) * 10 - 10)
        img = img[:, ::-1] if i % 2 else img
        out.append(_jpeg(np.asarray(img, np.uint8), width))
    return out


def clip_jpegs(interval_s: float = 1.0, width: int = FRAME_WIDTH) -> list[bytes]:
    """A webcam stream as the student page sends it: ``bench browser --duty``'s clip of two real faces drifting
    and turning, one picture every ``interval_s``, as ``width``-px JPEGs (the page's size and quality)."""
    from classmood.benchmarks.duty import CLIP_FPS, clip_frames

    clip = clip_frames()
    step = max(1, round(interval_s * CLIP_FPS))
    return [_jpeg(np.asarray(cv2.cvtColor(clip[k], cv2.COLOR_RGB2BGR), np.uint8), width)
            for k in range(0, len(clip), step)]


def _jpeg(bgr: npt.NDArray[np.uint8], width: int) -> bytes:
    small = cv2.resize(bgr, (width, width * bgr.shape[0] // bgr.shape[1]), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(small), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())


def frame_source(name: str, interval_s: float) -> list[bytes]:
    """The students' frames: ``astronaut`` (the worst case) or ``clip`` (a webcam stream)."""
    if name not in FRAME_SOURCES:
        raise ValueError(f"frames are one of {', '.join(FRAME_SOURCES)}")
    return astronaut_jpegs() if name == "astronaut" else clip_jpegs(interval_s)


# -- the clients ------------------------------------------------------------------------------------

@dataclass
class _Shared:
    sent_at: dict[str, float] = field(default_factory=dict)  # frame id -> wall-clock send time (also its ts)
    owner: dict[str, int] = field(default_factory=dict)  # frame id -> participant id
    acked: dict[str, int] = field(default_factory=dict)  # frame id -> faces of its first non-duplicate ack (or -1)
    seen_on_dashboard: set[str] = field(default_factory=set)


async def dashboard(client: httpx.AsyncClient, setup: Setup, shared: _Shared, result: LoadResult) -> None:
    """Listen like the teacher's dashboard (reconnecting like EventSource); match events to frames by client_id."""
    while True:
        try:
            async for event, data in sse_events(client, f"/api/sessions/{setup.session_id}/live", setup.auth):
                if event != "observation":
                    continue
                now = time.time()
                result.dashboard_events += 1
                cid = json.loads(data).get("client_id")
                if cid in shared.sent_at and cid not in shared.seen_on_dashboard:
                    shared.seen_on_dashboard.add(cid)
                    result.dashboard_delays.append(now - shared.sent_at[cid])
        except httpx.HTTPError:
            result.dashboard_reconnects += 1
            await asyncio.sleep(1.0)


@dataclass
class _Student:
    """One simulated student page: frames waiting for their ack are re-sent after a reconnect, as student.js does."""

    url: str
    participant_id: int
    pending: dict[str, str] = field(default_factory=dict)  # frame id -> message, in sending order
    ws: Any = None
    producing: bool = True


async def student(base_ws: str, setup: Setup, index: int, frames: list[str], *, stop_at: float, drain_s: float,
                  interval_s: float, shared: _Shared, result: LoadResult, http: httpx.AsyncClient) -> None:
    """Join, send a frame every ``interval_s`` until ``stop_at``, then wait up to ``drain_s`` for the last acks."""
    r = await http.post("/api/join", json={"code": setup.code, "display_name": f"Student {index}", "consent": True})
    r.raise_for_status()
    joined = r.json()
    me = _Student(f"{base_ws}/api/sessions/{setup.session_id}/stream?token={joined['token']}", joined["participant_id"])
    producer = asyncio.create_task(_produce(me, index, frames, stop_at, interval_s, shared, result))
    deadline = stop_at + drain_s
    first = True
    while (me.producing or me.pending) and time.time() < deadline:
        try:
            # Bounded: a send can block on a server that no longer reads, and the run must end on time.
            await asyncio.wait_for(_connection(me, first, deadline, shared, result),
                                   timeout=max(1.0, deadline - time.time() + 1.0))
        except (OSError, TimeoutError, ConnectionError, _ws_closed()):
            result.reconnects += 1
            await asyncio.sleep(0.5 + 0.5 * (index % 7) / 7)  # a little jitter, like the page's backoff
        finally:
            me.ws = None
        first = False
    producer.cancel()
    result.unacked += len(me.pending)


def _ws_closed() -> type[Exception]:
    from websockets.exceptions import ConnectionClosed

    return ConnectionClosed


async def _connection(me: _Student, first: bool, deadline: float, shared: _Shared, result: LoadResult) -> None:
    import websockets

    # No client pings (browsers send none); the server's pings keep the connection honest.
    async with websockets.connect(me.url, max_size=2**22, open_timeout=60, ping_interval=None) as ws:
        for message in list(me.pending.values()):  # everything not yet acknowledged goes again
            await ws.send(message)
            result.resent += 0 if first else 1
        me.ws = ws
        while (me.producing or me.pending) and time.time() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
            except TimeoutError:
                continue
            _on_reply(json.loads(raw), me, shared, result)


def _on_reply(msg: dict[str, Any], me: _Student, shared: _Shared, result: LoadResult) -> None:
    fid = msg.get("id")
    if fid not in me.pending:
        return  # a late answer to a frame acknowledged before (re-sent after a reconnect)
    if msg.get("type") != "ack" and (msg.get("status") == 429 or int(msg.get("status") or 0) >= 500):
        result.retried += 1  # busy server: the frame stays queued and goes again, as on the student page
        asyncio.get_running_loop().call_later(2.0, _resend, me, fid)
        return
    del me.pending[fid]
    if msg.get("type") != "ack":
        result.errors += 1
        return
    result.acks += 1
    result.ack_delays.append(time.time() - shared.sent_at[fid])
    result.duplicates_acked += bool(msg.get("duplicate"))
    result.shed += bool(msg.get("shed"))
    shared.acked[fid] = -1 if msg.get("duplicate") else int(msg.get("faces", 0))


def _resend(me: _Student, fid: str) -> None:
    if fid in me.pending and me.ws is not None:
        task = asyncio.ensure_future(me.ws.send(me.pending[fid]))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a broken socket re-sends on reconnect


async def _produce(me: _Student, index: int, frames: list[str], stop_at: float, interval_s: float,
                   shared: _Shared, result: LoadResult) -> None:
    await asyncio.sleep(interval_s * (index % 97) / 97)  # spread the students over one interval
    k = index
    while time.time() < stop_at:
        fid, now = str(uuid.uuid4()), time.time()
        message = json.dumps({"id": fid, "ts": now, "image": frames[k % len(frames)]})
        shared.sent_at[fid], shared.owner[fid] = now, me.participant_id
        me.pending[fid] = message
        result.frames_sent += 1
        if me.ws is not None:
            with contextlib.suppress(Exception):  # a broken socket is noticed and re-opened by the reader
                await me.ws.send(message)
        k += 1
        await asyncio.sleep(max(0.0, now + interval_s - time.time()))
    me.producing = False


# -- the run ----------------------------------------------------------------------------------------

def _stored_keys(csv_text: str) -> list[tuple[int, float]]:
    """(participant id, ts rounded to the millisecond) of every exported observation row."""
    rows = csv.DictReader(io.StringIO(csv_text))
    return [(int(row["participant_id"]), round(float(row["ts"]), 3)) for row in rows]


def _account(result: LoadResult, shared: _Shared, keys: list[tuple[int, float]]) -> None:
    """Lost: acknowledged frames with a face that are not stored. Duplicated: a frame stored twice."""
    stored = set(keys)
    result.stored = len(keys)
    result.duplicated = len(keys) - len(stored)
    result.faces_acked = sum(max(0, n) for n in shared.acked.values())  # from first (non-duplicate) acks
    result.no_face = sum(1 for n in shared.acked.values() if n == 0)
    expected = {(shared.owner[f], round(shared.sent_at[f], 3)) for f, n in shared.acked.items() if n != 0}
    result.expected = len(expected)
    result.lost = len(expected - stored)
    acked_keys = {(shared.owner[f], round(shared.sent_at[f], 3)) for f in shared.acked}
    result.stored_unacked = len(stored - acked_keys)


async def _run(url: str, email: str, password: str, load: _Load, server_cpu: Callable[[], float]) -> LoadResult:
    result = LoadResult(students=load.students, seconds=load.seconds, interval_s=load.interval_s, frames=load.frames)
    frames = [base64.b64encode(j).decode("ascii") for j in load.jpegs]
    shared = _Shared()
    limits = httpx.Limits(max_connections=load.students + 10)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, verify=tls()) as http:
        setup = await create_session(http, email, password)
        listener = asyncio.create_task(dashboard(http, setup, shared, result))
        await asyncio.sleep(0.5)  # let the SSE subscription settle before the first frame
        start, cpu0 = time.time(), server_cpu()
        base_ws = "ws" + url.removeprefix("http")
        await asyncio.gather(*(student(base_ws, setup, i, frames, stop_at=start + load.seconds, drain_s=load.drain_s,
                                       interval_s=load.interval_s, shared=shared, result=result, http=http)
                               for i in range(load.students)))
        result.wall_s, result.server_cpu_s = time.time() - start, server_cpu() - cpu0
        # The last events are on their way to the dashboard: one for each frame acknowledged with a face.
        await settle(lambda: len(shared.seen_on_dashboard) >= sum(1 for n in shared.acked.values() if n > 0))
        listener.cancel()
        r = await http.get(f"/api/sessions/{setup.session_id}/export.csv", headers=setup.auth)
        r.raise_for_status()
        _account(result, shared, _stored_keys(r.text))
        (await http.post(f"/api/sessions/{setup.session_id}/end", headers=setup.auth)).raise_for_status()
    return result


@dataclass(frozen=True)
class _Load:
    students: int
    seconds: float
    interval_s: float
    drain_s: float
    frames: str
    jpegs: list[bytes]  # the frames' pictures, made once


def run_load(students: int, seconds: float, *, url: str | None = None, email: str = "", password: str = "",
             interval_s: float = 1.0, drain_s: float = 60.0, server_nice: int = 0,
             frames: str = "astronaut") -> LoadResult:
    """Run the load benchmark against ``url`` (admin ``email``/``password``) or a fresh local server.

    ``frames``: ``astronaut`` (mirrored every other frame: no face stays where it was, the worst case for the
    server's region search) or ``clip`` (a webcam stream of two faces drifting and turning).
    """
    if students < 1 or seconds <= 0 or interval_s <= 0:
        raise ValueError("students must be >= 1, seconds and interval_s > 0")
    # made before any server starts: a wrong name fails at once
    load = _Load(students, seconds, interval_s, drain_s, frames, frame_source(frames, interval_s))
    if url:
        if not (email and password):
            raise ValueError("--url needs the --email and --password of an admin")
        return asyncio.run(_run(url.rstrip("/"), email, password, load, lambda: 0.0))
    email, password = "load-admin@example.org", secrets.token_urlsafe(16)
    with local_server_process(email, password, nice=server_nice) as local:
        return asyncio.run(_run(local.url, email, password, load, lambda: process_cpu_s(local.pid)))


def format_load(result: LoadResult) -> str:
    """A short human-readable report of one run."""
    s = result.summary()

    def ms(v: float | None) -> str:
        return "–" if v is None else f"{1000 * v:.0f} ms"

    verdict = "sustained" if result.sustained() else "NOT sustained (server behind: delays grow, backlog at the end)"
    return "\n".join([
        f"students {s['students']} · {s['seconds']:.0f} s · a frame every {s['interval_s']:g} s each "
        f"({s['frames']} frames): {verdict}",
        f"frames sent {s['frames_sent']} ({s['frames_per_s']:.1f}/s) · acknowledged {s['acks']} "
        f"({s['acks_per_s']:.1f}/s over {s['wall_s']:.0f} s) · errors {s['errors']} · unacknowledged {s['unacked']}",
        f"analysed {s['analysed']} ({s['analysed_per_s']:.1f}/s) · server CPU {_share(result)}",
        f"reconnects {s['reconnects']} · frames re-sent {s['resent']} · retried after 429 {s['retried']} · "
        f"duplicate acks {s['duplicates_acked']} · shed under overload {s['shed']}",
        f"observations expected {s['expected']} · stored {s['stored']} (of which {s['stored_unacked']} "
        f"unacknowledged) · lost {s['lost']} · duplicated {s['duplicated']} · frames without a face "
        f"{s['no_face'] - s['shed']}",
        f"frame → ack: median {ms(s['ack_delay_median_s'])}, p95 {ms(s['ack_delay_p95_s'])}",
        f"frame → dashboard: median {ms(s['dashboard_delay_median_s'])}, p95 {ms(s['dashboard_delay_p95_s'])} "
        f"({s['dashboard_events']} events)",
    ])


def _share(result: LoadResult) -> str:
    if not result.server_cpu_s or not result.wall_s:
        return "not measured (a server elsewhere)"
    per_frame = f", {1000 * result.server_cpu_s / result.analysed:.1f} ms a frame analysed" if result.analysed else ""
    return f"{100 * result.server_cpu_s / result.wall_s:.0f} % of one core{per_frame}"


def save_json(result: LoadResult, path: Path) -> None:
    """Write the summary figures as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.summary(), indent=2))

