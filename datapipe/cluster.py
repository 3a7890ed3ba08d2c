"""Ray for qimage: a private local instance on loopback, or the cluster the user names, and nothing left behind.

- With an address (`--address`, or RAY_ADDRESS), join that cluster.
- Without one, always start a new local instance (`address="local"`): a plain `ray.init()` would join whatever
  cluster Ray's temp directory last recorded, and after that cluster crashed every later run failed to start.
  The local instance's node address is 127.0.0.1, so its GCS, raylet, object manager, agents and workers listen
  on loopback only.
- Every process the local instance starts carries a run mark in its environment, and the run is recorded in qimage's
  cache folder while it lasts. A clean exit (including Ctrl-C and SIGTERM) shuts Ray down, ends anything marked
  that is left and removes the record; after a kill -9 of the driver, Ray's agents and workers outlive it, and the
  next local start ends every process marked with a dead run's id.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
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
            run_id = _run_id()
            with _loopback(), _marked(run_id):
                ray.init(address="local", object_store_memory=int(object_store_mb) << 20, **kw)
            _track_start(run_id)
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
# Every process of a local instance inherits this variable from the driver (the raylet passes its environment on to
# the workers it starts later), so a dead run's workers are found whatever title Ray gave them and however late they
# started. Ray's agents rename themselves over their environment's memory, so they are recorded by pid at start.
MARK = "QIMAGE_RAY_RUN"


def _descendants() -> dict[str, float]:
    import psutil

    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if any("ray" in part for part in p.cmdline()):  # Ray's own, not whatever else the caller runs
                out[str(p.pid)] = p.create_time()
        except psutil.Error:
            pass
    return out


def _run_id() -> str:
    import psutil

    me = psutil.Process()
    return f"{me.pid}-{int(me.create_time() * 1000)}"


class _marked:
    def __init__(self, run_id: str):
        self.run_id = run_id

    def __enter__(self):
        os.environ[MARK] = self.run_id

    def __exit__(self, *exc):
        os.environ.pop(MARK, None)  # only Ray's processes carry it, not what the caller starts later


def _track_start(run_id: str) -> None:
    import ray

    path = records_dir() / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"gcs_address": ray.get_runtime_context().gcs_address, "procs": _descendants()}))
    os.replace(tmp, path)
    _STATE.update(path=path, run_id=run_id)
    atexit.register(shutdown)
    if threading.current_thread() is threading.main_thread():
        # the driver's core worker installs a crash handler for SIGTERM that aborts without atexit, which leaves
        # Ray's agents running as a kill -9 would; exit through atexit instead
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def shutdown() -> None:
    """Stop the local instance this process started, end any of its processes Ray left, drop the record."""
    import ray

    if "path" not in _STATE:
        return
    if ray.is_initialized():
        ray.shutdown()
    _terminate(_STATE["run_id"], _recorded(_STATE["path"]))
    _STATE["path"].unlink(missing_ok=True)
    _STATE.clear()


def sweep() -> int:
    """End the processes of local instances whose driver is gone; returns how many were still running."""
    import psutil

    ended = 0
    for rec in sorted(records_dir().glob("*.json")):
        pid, _, started = rec.stem.partition("-")
        try:
            alive = int(psutil.Process(int(pid)).create_time() * 1000) == int(started)
        except (psutil.Error, ValueError):
            alive = False
        if not alive:
            ended += _terminate(rec.stem, _recorded(rec))
            rec.unlink(missing_ok=True)
    return ended


def _recorded(rec: Path) -> dict[int, float]:
    try:
        return {int(k): float(v) for k, v in json.loads(rec.read_text()).get("procs", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _terminate(run_id: str, procs: dict[int, float], grace_s: float = 3.0) -> int:
    """SIGTERM, then SIGKILL after grace_s, every running process that carries this run's mark or was recorded with
    its start time (a pid reused by another program has another start time and is left alone)."""
    import psutil

    live = []
    for p in psutil.process_iter():
        try:
            ours = p.environ().get(MARK) == run_id or abs(procs.get(p.pid, -1.0) - p.create_time()) < 1e-3
            if p.pid != os.getpid() and ours and p.status() != psutil.STATUS_ZOMBIE:
                live.append(p)
        except psutil.Error:
            pass  # gone, or another user's
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
