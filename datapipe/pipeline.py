"""`qimage data run`: plan work units, score them with Ray Data, then decide globally and write the outputs.

Flow
  1. discover every input file (sorted: the same folder always gives the same plan) and cut it into shards;
  2. per shard, one Ray task reads bytes, decodes and scores each row (qimage.datapipe.process) and writes
     OUT/_work/shards/NNNNN.parquet atomically (qimage.datapipe.storage): a shard file exists complete or not at all, which is what makes resume exact (a restarted run skips shards whose file exists, so nothing is
     recomputed, duplicated or lost);
  3. the global pass (driver, no pixels): near-duplicates across all shards, rebalancing weights, then one kept
     and one rejected Parquet file per shard, report.json and report.html.

OUT/_work/manifest.json pins the input list, recipe and stage range; a restart with different ones is refused
rather than mixing two runs in one output.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time

import pyarrow as pa

from qimage.datapipe import recipe as R
from qimage.datapipe.cluster import init_ray, sweep
from qimage.datapipe.pairs import EDIT_ERROR, PATH_KEYS
from qimage.datapipe.process import Plan, process_file
from qimage.datapipe.sample import discover
from qimage.datapipe.storage import display_uri, open_store
from qimage.errors import UserError

MANIFEST, SHARDS = "_work/manifest.json", "_work/shards"  # inside the output
STATE_VERSION = 2  # 2: edit pairs (shards carry the target columns)
STAGE_NAMES = {1: "Initial curation (256p)", 2: "Image quality", 3: "Image-text alignment", 4: "Text rendering",
               5: "High resolution (640p)", 6: "Category balance and portraits", 7: "Balanced multi-scale"}


def parse_stages(text: str | None) -> tuple[int, ...]:
    """"1-7", "3", "1-2,5" -> the sorted stage numbers to run (stage 1's broken_file always runs)."""
    if text is None or str(text).strip() == "":
        return tuple(range(1, 8))
    out: set[int] = set()
    for part in str(text).split(","):
        try:
            ends = [int(p) for p in part.strip().split("-")]
        except ValueError:
            raise UserError(f"--stages {text!r}: expected stages 1..7 as A-B, N or a comma list, e.g. 1-5 or 1-2,5") from None
        if len(ends) == 1:
            ends = ends * 2
        if len(ends) != 2 or not (1 <= ends[0] <= ends[1] <= 7):
            raise UserError(f"--stages {text!r}: expected A-B with 1 <= A <= B <= 7 (or N, or a comma list)")
        out.update(range(ends[0], ends[1] + 1))
    return tuple(sorted(out))


def stages_text(stages) -> str:
    """(1, 2, 3, 5) -> "1-3,5"."""
    parts, run = [], []
    for s in sorted(stages):
        if run and s != run[-1] + 1:
            parts.append(run)
            run = []
        run.append(s)
    parts.append(run)
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in parts if r)


_PLANS: dict[tuple, Plan] = {}


def _plan(recipe: dict, stages: tuple[int, ...]) -> Plan:
    # one Plan per worker process: models and OCR load once, not once per shard
    key = (R.fingerprint(recipe), stages)
    if key not in _PLANS:
        _PLANS[key] = Plan(recipe, stages)
    return _PLANS[key]


def shard_file(shard: int) -> str:
    return f"{SHARDS}/{shard:05d}.parquet"


def run_shard(shard: int, files: list[str], sidecars: dict, root: str, out: str, recipe: dict,
              stages: tuple[int, ...]) -> dict:
    """Score one shard and write it atomically. `root`, `out`: the input and output locations (paths or URIs),
    opened here so that each Ray worker reaches them with its own node's credentials."""
    cpu = time.process_time()
    plan = _plan(recipe, stages)
    store = open_store(root)
    rows = [process_file(plan, store, rel, sidecars.get(rel, {}), 96) for rel in files]
    open_store(out).write_table(shard_file(shard), pa.Table.from_pylist(rows, schema=shard_schema(plan)))
    return {"shard": shard, "n": len(rows), "rejected": sum(r["filter"] is not None for r in rows),
            "cpu_s": time.process_time() - cpu}


# Edit pairs (qimage.datapipe.pairs): null for plain samples. target_path is set when the target file belongs to the
# row (kept or rejected with it); edit and instruction whenever the source's JSON declares a target.
PAIR_FIELDS = [("target_path", pa.string()), ("target_image", pa.binary()), ("target_caption", pa.string()),
               ("target_meta", pa.string()), ("instruction", pa.string()), ("edit", pa.string())]


def shard_schema(plan: Plan) -> pa.Schema:
    fields = [("id", pa.string()), ("path", pa.string()), ("size_bytes", pa.int64()), ("caption", pa.string()),
              ("has_caption", pa.bool_()), ("meta", pa.string()), ("synthetic", pa.bool_()), ("width", pa.int32()),
              ("height", pa.int32()), ("format", pa.string()), ("stage", pa.int32()), ("filter", pa.string()),
              ("reason", pa.string()), ("reasons", pa.list_(pa.string())), ("score", pa.float64()), ("phash", pa.int64()), ("passed_later", pa.bool_()),
              ("lang", pa.string()), ("category", pa.string()), ("bucket", pa.string()), ("ocr", pa.string()),
              ("ocr_text", pa.string()), ("image", pa.binary()), ("thumb", pa.binary()), *PAIR_FIELDS]
    fields += [(c, pa.float64()) for c in plan.score_columns()]
    return pa.schema(fields)


# -- the run -----------------------------------------------------------------------------------------------------
def _fingerprint_inputs(root, inputs: list[str], sidecars: dict[str, dict[str, str]]) -> str:
    """Paths, sizes and mtimes of every input and its caption/metadata sidecars (an edit pair's target and its
    sidecars too): a resume must not mix old and new captions, so an edited sidecar changes the fingerprint just as
    an edited image does. `root`: a folder, a URI or a storage.Store."""
    lines, paths = [], []
    for rel in inputs:
        cars = sidecars.get(rel, {})
        if EDIT_ERROR in cars:
            lines.append((f"{rel}\0{cars[EDIT_ERROR]}", None))
        for path in (rel, *sorted(v for k, v in cars.items() if k in PATH_KEYS)):
            lines.append((path, len(paths)))
            paths.append(path)
    stats = open_store(root).stats(paths)  # one call: an object store answers a listing, not a request per file
    h = hashlib.sha256()
    for text, k in lines:
        line = text if k is None else f"{text}\0{stats[k][0]}\0{stats[k][1]}"
        h.update(f"{line}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def run(input_dir, out_dir, recipe_path=None, stages="1-7", address=None, overwrite=False, progress=True,
        log=print) -> dict:
    t0 = time.time()
    sweep()  # an earlier run killed with -9 left Ray processes behind, whether or not this one needs Ray
    root, out = open_store(input_dir), open_store(out_dir)
    shown = display_uri(str(input_dir))
    if not root.is_dir():
        raise UserError(f"input folder not found: {shown}")
    if root.contains(out) and out.contains(root):
        raise UserError("the output folder must differ from the input folder")
    st = parse_stages(stages)
    recipe = R.load(recipe_path)
    inputs, sidecars = discover(root)
    if root.contains(out):  # outputs written inside the input tree are not inputs on a rerun
        inside = root.relative(out) + "/"
        inputs = [p for p in inputs if not p.startswith(inside)]
    if not inputs:
        raise UserError(f"no files under {shown}")

    manifest = {"version": STATE_VERSION, "input": root.name, "inputs": len(inputs),
                "inputs_fingerprint": _fingerprint_inputs(root, inputs, sidecars), "recipe": R.fingerprint(recipe),
                "stages": stages_text(st), "shard_size": int(recipe["run"]["shard_size"])}
    old = json.loads(out.read_text(MANIFEST)) if out.exists(MANIFEST) else None
    if old is not None and old != manifest and not overwrite:
        diff = ", ".join(k for k in manifest if old.get(k) != manifest[k])
        raise UserError(f"{out.name} holds a run with different {diff}; use another output folder or --overwrite")
    if overwrite or old is None:
        for sub in ("_work", "kept", "rejected"):
            out.remove_tree(sub)
    out.makedirs(SHARDS)
    out.write_text(MANIFEST, json.dumps(manifest, indent=1))

    size = manifest["shard_size"]
    shards = [(i, inputs[j:j + size]) for i, j in enumerate(range(0, len(inputs), size))]
    written = set(out.files(SHARDS, recursive=False))
    # done: its file exists and holds a row per input (an object store may hold a shard whose upload an interrupt
    # completed early; a local shard is renamed into place complete)
    pending = [(i, f) for i, f in shards if shard_file(i) not in written or out.row_count(shard_file(i)) != len(f)]
    done_files = len(inputs) - sum(len(f) for _, f in pending)
    warnings = Plan(recipe, st, dry=True).warnings
    for w in warnings:
        log(f"warning: {w}")
    if done_files:
        log(f"resuming: {len(shards) - len(pending)} of {len(shards)} shards already done")
    t1 = time.time()
    worker_cpu, nodes = 0.0, {}
    if pending:
        worker_cpu, nodes = _score(pending, sidecars, root, out, recipe, st, address, len(inputs), done_files, progress)
    from qimage.datapipe.finalize import finalize

    timing = {"scoring_s": round(time.time() - t1, 3), "scored_files": len(inputs) - done_files,
              "worker_cpu_s": round(worker_cpu, 3),
              "shards_per_node": nodes}  # Ray node id -> shards it scored in this invocation
    report = finalize(root, out, recipe, st, len(shards), warnings, time.time() - t0, timing)
    return report


def _score(pending, sidecars, root, out, recipe, st, address, total, done, progress) -> tuple[float, dict]:
    """Score the pending shards; returns the CPU seconds the tasks spent (for the report and the benchmark) and
    how many shards each Ray node scored."""
    from tqdm import tqdm

    ray = init_ray(address, recipe["run"]["object_store_mb"])
    import ray.data

    # ray.data warns when its bars are turned off and logs every execution at INFO: neither helps a user here
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # our own bar counts images, Ray's would count blocks of shards
    ctx.print_on_execution_start = False
    # Ray Data reserves a share of the CPUs per operator; with a single map operator on a small machine that held the
    # scoring tasks to about one core (measured: 1.15x the single-process loop on 2 cores, 1.99x without it).
    ctx.op_resource_reservation_enabled = False
    items = [{"shard": i, "files": json.dumps(f)} for i, f in pending]
    cars = {rel: sidecars[rel] for _, f in pending for rel in f if rel in sidecars}

    def score(row: dict) -> dict:
        files = json.loads(row["files"])
        done = run_shard(int(row["shard"]), files, cars, root.uri, out.uri, recipe, st)
        return {**done, "node": ray.get_runtime_context().get_node_id()}

    ds = ray.data.from_items(items, override_num_blocks=len(items)).map(score, num_cpus=float(recipe["run"]["task_cpus"]))
    cpu, nodes = 0.0, {}
    with tqdm(total=total, initial=done, unit="img", desc="scoring", disable=not progress, dynamic_ncols=True) as bar:
        for row in ds.iter_rows():
            bar.update(int(row["n"]))
            cpu += float(row["cpu_s"])
            nodes[row["node"]] = nodes.get(row["node"], 0) + 1
    return cpu, dict(sorted(nodes.items()))
