"""Ray around the pipeline: a private local instance on loopback, nothing left behind, and a real two-node cluster.

Every Ray process these tests start is stopped by the test itself, by process id.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from qimage.datapipe.demo import build

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _env(tmp: Path, **extra) -> dict:
    # RAY_TMPDIR: sessions, sockets and the "current cluster" record live in the test's own folder; a short path,
    # because Ray's Unix sockets live under it and socket paths are limited to 107 bytes
    return {**os.environ, "RAY_TMPDIR": str(tmp), "XDG_CACHE_HOME": str(tmp / "cache"), "PYTHONWARNINGS": "ignore",
            **extra}


def _short_tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="qr", dir="/tmp"))


def _tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


def _running(procs) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _stop(procs, grace_s: float = 15.0) -> None:
    for p in _running(procs):
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, stuck = psutil.wait_procs(_running(procs), timeout=grace_s)
    for p in stuck:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(stuck, timeout=10)


PROBE = """
import json, psutil
from qimage.datapipe.cluster import init_ray
ray = init_ray(None, 128)
me = psutil.Process()
listen = [c.laddr.ip for p in [me, *me.children(recursive=True)] for c in p.net_connections(kind="inet")
          if c.status == psutil.CONN_LISTEN]
print(json.dumps({"nodes": [n["NodeManagerAddress"] for n in ray.nodes()], "listen": listen}))
"""


def test_a_local_run_starts_its_own_ray_on_loopback_even_with_a_stale_cluster_record():
    tmp = _short_tmp()
    # what a crashed cluster leaves: a plain ray.init() joins this address and fails
    (tmp / "ray").mkdir()
    (tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:9")
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180, env=_env(tmp))
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["nodes"] == ["127.0.0.1"]
    assert len(got["listen"]) >= 4 and set(got["listen"]) <= LOOPBACK, got["listen"]  # GCS, raylet, agents, workers


def _ray_started(cache: Path, timeout: float = 180) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        recs = list((cache / "qimage" / "ray").glob("*.json"))  # written once ray.init has returned
        if recs:
            return recs[0]
        time.sleep(0.2)
    raise AssertionError("the run never started Ray")


@pytest.mark.slow
def test_ray_processes_do_not_outlive_a_killed_run_once_it_is_rerun_nor_a_terminated_one(tmp_path):
    tmp = _short_tmp()
    root = tmp_path / "in"
    build(root)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("run: {shard_size: 2}\n")
    args = [sys.executable, "-m", "qimage", "data", "run", str(root), "-o", str(tmp_path / "out"), "--recipe",
            str(recipe), "--stages", "1-3", "-q"]  # stages 1-3: no OCR or faces, the run is not what is tested
    env = _env(tmp)

    run = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rec = _ray_started(tmp / "cache")
    time.sleep(2)
    started = _tree(run.pid)[1:]
    run.kill()  # the driver only, as a crash or an OOM kill would
    run.wait()
    time.sleep(3)
    orphans = _running(started)
    try:
        assert orphans, "after kill -9 of the driver, Ray's agents outlive it: without that this test means nothing"
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        assert not _running(orphans), [p.name() for p in _running(orphans)]
        assert not rec.exists()
    finally:
        _stop(orphans)

    run = subprocess.Popen([*args, "--overwrite"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    _ray_started(tmp / "cache")
    time.sleep(2)
    started = _tree(run.pid)[1:]
    try:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=120) == 128 + signal.SIGTERM
        time.sleep(2)
        assert not _running(started), [p.name() for p in _running(started)]
        assert not list((tmp / "cache" / "qimage" / "ray").glob("*.json"))
    finally:
        _stop(_tree(run.pid) + started)


# -- two nodes ------------------------------------------------------------------------------------------------------
# A worker node on this machine: Ray rewrites 127.0.0.1 to the outward interface when a node joins, and the head's
# loopback-only GCS cannot be reached there. Real clusters give each node its own address and need none of this.
WORKER_NODE = """
import sys
from ray._private import services
services.get_node_ip_address = lambda address=None: "127.0.0.1"
from ray.scripts.scripts import main
sys.argv = ["ray", *sys.argv[1:]]
main()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outcomes(out: Path) -> dict[str, tuple]:
    got = {}
    for sub in ("kept", "rejected"):
        for p in sorted((out / sub).glob("*.parquet")):
            cols = ["path", "bucket", "weight"] if sub == "kept" else ["path", "filter", "reason"]
            for r in pq.read_table(p, columns=cols).to_pylist():
                got[r["path"]] = (sub, *[r[c] for c in cols[1:]])
    return got


@pytest.mark.slow
def test_a_two_node_cluster_gives_the_local_result_with_tasks_on_both_nodes(tmp_path):
    tmp = _short_tmp()
    root = tmp_path / "in"
    expected = build(root)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("run: {shard_size: 3, task_cpus: 1.0}\n")  # 13 shards; stages 1-3 keep OCR and faces out
    port = _free_port()
    env = _env(tmp, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))  # shared by both nodes and the driver
    common = ["--block", "--num-cpus=1", "--disable-usage-stats"]
    logs = tmp_path / "logs"
    logs.mkdir()
    head = subprocess.Popen(["ray", "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--include-dashboard=false", f"--temp-dir={tmp / 'ray'}", *common],
                            env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, start_new_session=True,
                            stdout=open(logs / "head.log", "w"), stderr=subprocess.STDOUT)
    nodes = [head]
    try:
        addr = f"127.0.0.1:{port}"
        _wait_for_nodes(addr, env, 1)
        nodes.append(subprocess.Popen([sys.executable, "-c", WORKER_NODE, "start", f"--address={addr}", *common],
                                      env=env, start_new_session=True, stdout=open(logs / "worker.log", "w"),
                                      stderr=subprocess.STDOUT))
        _wait_for_nodes(addr, env, 2)
        cluster_out = tmp_path / "cluster"
        r = subprocess.run([sys.executable, "-m", "qimage", "data", "run", str(root), "-o", str(cluster_out),
                            "--recipe", str(recipe), "--address", addr, "--stages", "1-3", "-q"],
                           env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        procs = [p for n in nodes for p in _tree(n.pid)]
        listening = {c.laddr.ip for p in _running(procs) for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
    finally:
        procs = [p for n in nodes for p in _tree(n.pid)]
        _stop(procs, grace_s=2.0)  # a node asked to stop drains for 30 s first; nothing is left to drain here
    assert not _running(procs)
    assert listening and listening <= LOOPBACK, listening

    per_node = json.loads((cluster_out / "report.json").read_text())["timing"]["shards_per_node"]
    assert len(per_node) == 2 and min(per_node.values()) >= 1, per_node  # 13 shards, one CPU on each node
    print(f"shards per node: {sorted(per_node.values())}")  # for `pytest -s`: how the work was shared

    local_out = tmp_path / "local"
    r = subprocess.run([sys.executable, "-m", "qimage", "data", "run", str(root), "-o", str(local_out), "--recipe",
                        str(recipe), "--stages", "1-3", "-q"], env=_env(_short_tmp()), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cluster, local = _outcomes(cluster_out), _outcomes(local_out)
    for name, out in (("two nodes", cluster_out), ("local", local_out)):  # for `pytest -s`: the closing note's figures
        rep = json.loads((out / "report.json").read_text())
        print(f"{name}: {rep['counts']['kept']} kept, {rep['counts']['rejected']} rejected, "
              f"scoring {rep['timing']['scoring_s']:.1f} s")
    assert sorted(local) == sorted(expected)
    assert cluster == local


NODES = """
import sys
from qimage.datapipe.cluster import init_ray
print(sum(n["Alive"] for n in init_ray(sys.argv[1]).nodes()))
"""


def _wait_for_nodes(addr: str, env: dict, n: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run([sys.executable, "-c", NODES, addr], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and int(r.stdout.split()[-1]) >= n:
            return
        time.sleep(1)
    raise AssertionError(f"the cluster at {addr} never had {n} live nodes")
