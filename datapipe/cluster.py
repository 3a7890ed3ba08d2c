"""Ray for qimage: a private local instance on loopback, or the cluster the user names, and nothing left behind.

- With an address (`--address`, or RAY_ADDRESS), join that cluster.
- Without one, always start a new local instance (`address="local"`): a plain `ray.init()` would join whatever
  cluster Ray's temp directory last recorded, and after that cluster crashed every later run failed to start.
  The local instance's node address is 127.0.0.1, so its GCS, raylet, object manager, agents and workers listen
  on loopback only.
- Every process the local instance starts is recorded (pid and start time) in qimage's cache folder while the run
  lasts. A clean exit (including Ctrl-C and SIGTERM) shuts Ray down and removes the record; after a kill -9 of the
  driver, Ray's agents and workers outlive it, and the next local start terminates whatever its records still name.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from qimage.errors import UserError

_STATE: dict = {}


def records_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qimage" / "ray"


def init_ray(address: str | None = None, object_store_mb: int = 256):
    """Join `address` (or RAY_ADDRESS) when given, else start a private local Ray on 127.0.0.1; reuse one already up."""
    import ray

    if ray.is_initialized():
        return ray
    addr = address or os.environ.get("RAY_ADDRESS")
    logging.getLogger("ray").setLevel(logging.WARNING)
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if addr:
            with _loopback(_is_loopback(addr)):
                ray.init(address=addr, **kw)
        else:
            sweep()
            with _loopback():
                ray.init(address="local", object_store_memory=int(object_store_mb) << 20, **kw)
            _track_start()
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UserError(f"cannot start or join Ray ({addr or 'local'}): {str(e).splitlines()[0]}") from None
    return ray


def _is_loopback(addr: str) -> bool:
    host = addr.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


class _loopback:
    """Make Ray use 127.0.0.1 as this node's address while it starts or joins a cluster on this machine.

    Ray rewrites 127.0.0.1 (a local node's address, or the host of an address to join) to the machine's outward
    interface; only its single-machine switch (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read once at import) keeps
    loopback. The switch is set for the call only, so joining a remote cluster later in the same process still works.
    """

    def __init__(self, on: bool = True):
        self.on = on

    def __enter__(self):
        from ray._private import ray_constants

        self.const, self.old = ray_constants, ray_constants.ENABLE_RAY_CLUSTER
        if self.on:
            ray_constants.ENABLE_RAY_CLUSTER = False

    def __exit__(self, *exc):
        self.const.ENABLE_RAY_CLUSTER = self.old


# -- what the local instance started ---------------------------------------------------------------------------------
def _descendants() -> dict[int, float]:
    import psutil

    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if any("ray" in part for part in p.cmdline()):  # Ray's own, not whatever else the caller runs
                out[p.pid] = p.create_time()
        except psutil.Error:
            pass
    return out


def _track_start() -> None:
    import psutil

    me = psutil.Process()
    path = records_dir() / f"{me.pid}-{int(me.create_time() * 1000)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _STATE.update(path=path, procs={}, last=0.0)
    track(force=True)
    atexit.register(shutdown)
    if threading.current_thread() is threading.main_thread():
        # the driver's core worker installs a crash handler for SIGTERM that aborts without atexit, which leaves
        # Ray's agents running as a kill -9 would; exit through atexit instead
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def track(force: bool = False) -> None:
    """Add the processes the local instance started since the last call to its record (at most every 2 s)."""
    if "path" not in _STATE or (not force and time.time() - _STATE["last"] < 2.0):
        return
    _STATE["last"] = time.time()
    procs = {**_STATE["procs"], **_descendants()}
    if procs != _STATE["procs"]:
        _STATE["procs"] = procs
        tmp = _STATE["path"].with_suffix(".tmp")
        tmp.write_text(json.dumps({str(k): v for k, v in procs.items()}))
        os.replace(tmp, _STATE["path"])


def shutdown() -> None:
    """Stop the local instance this process started, end any of its processes Ray left, drop the record."""
    import ray

    if "path" not in _STATE:
        return
    if ray.is_initialized():
        ray.shutdown()
    _terminate({int(k): v for k, v in _STATE["procs"].items()})
    _STATE["path"].unlink(missing_ok=True)
    _STATE.clear()


def sweep() -> int:
    """End the processes recorded by local instances whose driver is gone; returns how many were still running."""
    import psutil

    ended = 0
    for rec in sorted(records_dir().glob("*.json")):
        pid, _, started = rec.stem.partition("-")
        try:
            alive = int(psutil.Process(int(pid)).create_time() * 1000) == int(started)
        except (psutil.Error, ValueError):
            alive = False
        if alive:
            continue
        try:
            procs = {int(k): float(v) for k, v in json.loads(rec.read_text()).items()}
        except (OSError, ValueError):
            procs = {}
        ended += _terminate(procs)
        rec.unlink(missing_ok=True)
    return ended


def _terminate(procs: dict[int, float], grace_s: float = 3.0) -> int:
    """SIGTERM, then SIGKILL after grace_s, each recorded process still running with its recorded start time (a pid
    reused by another program has another start time and is left alone)."""
    import psutil

    live = []
    for pid, started in procs.items():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - started) < 1e-3 and p.status() != psutil.STATUS_ZOMBIE:
                live.append(p)
        except psutil.Error:
            pass
    for p in live:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, stuck = psutil.wait_procs(live, timeout=grace_s)
    for p in stuck:
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(live)
