"""Private PostgreSQL and Redis servers that a fault benchmark may stop and start again.

The machine's shared PostgreSQL and Redis serve other tests at the same time, so the fault runs never touch
them: each starts its own ``postgres`` (``initdb`` in a temporary directory, a free port, trust
authentication, no fsync) and its own ``redis-server`` (a free port, nothing saved). PostgreSQL refuses to run
as root, so as root its commands run as the ``postgres`` user (``runuser``).

>>> postgres_bin() is None or (postgres_bin() / "pg_ctl").is_file()
True
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from classmood.server.threaded import free_port

POSTGRES_BINS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
                 "/usr/lib/postgresql/14/bin")


def postgres_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl`` (Debian's layout, else the PATH), or ``None``."""
    for folder in POSTGRES_BINS:
        if (Path(folder) / "pg_ctl").is_file() and (Path(folder) / "initdb").is_file():
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found and shutil.which("initdb") else None


class PrivatePostgres:
    """One PostgreSQL cluster of its own, in ``folder``, listening on 127.0.0.1:``port``."""

    def __init__(self, folder: Path, bin_dir: Path) -> None:
        self.folder, self.bin_dir = folder, bin_dir
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        # As root: the cluster belongs to the postgres user (PostgreSQL will not run as root).
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        cmd = [*self._as, str(self.bin_dir / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def init(self) -> None:
        """``initdb`` (trust authentication, user ``postgres``)."""
        if self._as:
            entry = pwd.getpwnam("postgres")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every connection at once (a restart by the administrator)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh cluster of its own, started; stopped and deleted afterwards. RuntimeError if none can run."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) on this machine")  # the scenario is skipped
    with tempfile.TemporaryDirectory(prefix="cm-faults-pg-") as tmp:
        server = PrivatePostgres(Path(tmp), bin_dir)
        server.init()
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                server.stop("immediate")


class PrivateRedis:
    """One ``redis-server`` of its own on 127.0.0.1:``port``, that keeps nothing on disk."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start it (on the same port as before) and wait until it answers PING."""
        import redis

        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """Stop it (SIGTERM, as a service manager does)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A fresh ``redis-server`` of its own, started; stopped afterwards. RuntimeError if there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no redis-server on this machine")
    server = PrivateRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
