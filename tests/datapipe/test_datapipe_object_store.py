"""Object storage (issue 16): `qimage data run s3://BUCKET/in -o s3://BUCKET/out` reads and writes the bucket through
pyarrow's S3 filesystem, configured the way users configure it (AWS_* variables, or options in the URI), and gives
the local run's result; a restart rescores only what was lost, and training reads the cleaned parts from the bucket.
The S3 server is moto's, on 127.0.0.1; the test stops it by its process id.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from qimage.datapipe.demo import build

STAGES = "1-2"  # decoding, the quality filters and dedup: enough to keep and reject; OCR is not what is tested
SUBSET = ("photos", "broken", "dup", "small", "unicode", "quality")  # of the demo folder: kept, and rejected by many filters


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(environment for the CLI, a pyarrow S3FileSystem on the same server) with an empty bucket `qimage`."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as f:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=f, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"moto did not start: {log.read_text()[-500:]}")
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
        fs = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                               endpoint_override=f"127.0.0.1:{port}", allow_bucket_creation=True)
        fs.create_dir("qimage")
        yield {**os.environ, **env, "PYTHONWARNINGS": "ignore"}, fs
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _outcomes(fs, out: str) -> dict[str, tuple]:
    """path -> (kept, bucket, weight) or (rejected, filter, reason), from every part of an output."""
    got = {}
    for sub in ("kept", "rejected"):
        parts = fs.get_file_info(pafs.FileSelector(f"{out}/{sub}", allow_not_found=True))
        for info in sorted(parts, key=lambda i: i.path):
            cols = ["path", "bucket", "weight"] if sub == "kept" else ["path", "filter", "reason"]
            for r in pq.read_table(info.path, columns=cols, filesystem=fs).to_pylist():
                got[r["path"]] = (sub, *[r[c] for c in cols[1:]])
    return got


def _qimage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qimage", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_an_s3_run_gives_the_local_result_and_resumes_what_was_lost(s3, tmp_path, ray_session):
    from qimage.datapipe.pipeline import run

    env, fs = s3
    demo = tmp_path / "demo"
    build(demo)
    root = tmp_path / "in"
    for sub in SUBSET:
        shutil.copytree(demo / sub, root / sub)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("run: {shard_size: 4}\n")  # several shards, so that one can be lost
    pafs.copy_files(str(root), "qimage/in", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)

    local = run(root, tmp_path / "local", recipe_path=recipe, stages=STAGES, progress=False, log=lambda m: None)
    r = _qimage(env, "data", "run", "s3://qimage/in", "-o", "s3://qimage/out", "--recipe", recipe, "--stages", STAGES,
                "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(fs.open_input_stream("qimage/out/report.json").read())
    assert report["input"] == "s3://qimage/in" and report["counts"] == local["counts"]
    want = _outcomes(pafs.LocalFileSystem(), str(tmp_path / "local"))
    assert {v[0] for v in want.values()} == {"kept", "rejected"} and len(want) == local["counts"]["inputs"]
    assert _outcomes(fs, "qimage/out") == want
    assert fs.get_file_info("qimage/out/report.html").size > 10_000

    # the restart runs in this process, on a Ray started before the AWS variables existed: its workers reach the
    # bucket through the options in the URI alone, and neither the manifest nor the report shows the credentials
    fs.delete_file("qimage/out/_work/shards/00001.parquet")
    part = fs.open_input_stream("qimage/out/_work/shards/00002.parquet").read()
    with fs.open_output_stream("qimage/out/_work/shards/00002.parquet") as f:  # an upload an interrupt completed early
        f.write(part[: len(part) // 2])
    fs.delete_dir("qimage/out/kept")
    opts = f"?endpoint_override={env['AWS_ENDPOINT_URL'].removeprefix('http://')}&scheme=http&region=us-east-1"
    logs = []
    again = run(f"s3://test:test@qimage/in{opts}", f"s3://test:test@qimage/out{opts}", recipe_path=recipe,
                stages=STAGES, progress=False, log=logs.append)
    assert "resuming: 5 of 7 shards already done" in logs
    assert again["timing"]["scored_files"] == 8  # the lost shard and the truncated one only
    assert _outcomes(fs, "qimage/out") == want
    assert again["input"] == "s3://qimage/in" and again["output"] == "s3://qimage/out"
    for key in ("out/_work/manifest.json", "out/report.json", "out/report.html"):
        assert b"test:test" not in fs.open_input_stream(f"qimage/{key}").read(), key

    # training reads the cleaned output where it lies (contract 2), the same records as from the local output
    from qimage.train.config import Source
    from qimage.train.data import read_source

    remote = read_source(Source(path=f"s3://test:test@qimage/out{opts}"))
    here = read_source(Source(path=str(tmp_path / "local")))
    assert len(here) == local["counts"]["kept"] > 0
    assert [(r.key, r.caption, r.width, r.data) for r in remote] == [(r.key, r.caption, r.width, r.data) for r in here]


def test_object_store_errors_are_one_line(s3, tmp_path):
    env, _ = s3
    r = _qimage(env, "data", "run", "s3://no-such-bucket/in", "-o", "s3://qimage/o", "-q")
    assert r.returncode == 2 and r.stderr.strip() == "qimage: error: input folder not found: s3://no-such-bucket/in", r.stderr
    r = _qimage(env, "data", "run", "nosuchscheme://x/in", "-o", tmp_path / "o", "-q")
    assert r.returncode == 2 and r.stderr.startswith("qimage: error: cannot open nosuchscheme://x/in: "), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
