"""The per-row pass: one input file -> one result row (scores, rejections, labels, bytes to ship).

Pure Python with no Ray in it, so the benchmark's single-process loop and the Ray tasks run the very same code.
"""
from __future__ import annotations

import hashlib
import json
import math

from qimage.datapipe import labels as L
from qimage.datapipe import pairs as P
from qimage.datapipe.filters import Filter, Verdict, load_all
from qimage.datapipe.filters.duplicate import phash, to_signed
from qimage.datapipe.ocr import language, run_ocr
from qimage.datapipe.sample import Sample
from qimage.datapipe.storage import Store, open_store

ALWAYS_FOR_SYNTHETIC = ("broken_file", "duplicate")


def sample_id(rel: str) -> str:
    # surrogateescape: a file name that is not valid UTF-8 still hashes to a stable id from its raw bytes
    return hashlib.sha1(rel.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def display_path(rel: str) -> str:
    """The path as valid UTF-8 for Parquet and the report: undecodable bytes written as \\xNN escapes."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Plan:
    """The recipe's filters, instantiated and ordered, restricted to a stage range. Built once per worker."""

    def __init__(self, recipe: dict, stages: tuple[int, ...] = tuple(range(1, 8)), dry: bool = False):
        """dry: only check that model dirs exist (the driver needs the filter list, not the models)."""
        registry = load_all(recipe.get("plugins", ()))
        self.recipe = recipe
        self.stages = tuple(sorted(stages))
        order = list(recipe["filters"])
        self.all: list[Filter] = sorted((registry[n](**recipe["filters"][n]) for n in order),
                                        key=lambda f: (f.stage, order.index(f.name)))
        self.warnings: list[str] = []
        self.filters: list[Filter] = []
        for f in self.all:
            if not f.enabled or not (f.mandatory or f.stage in self.stages):
                continue
            problem = f.check() if dry else f.setup()
            if problem:
                self.warnings.append(problem)
                continue
            self.filters.append(f)
        self.cascade = bool(recipe["run"]["cascade"])
        self.synthetic_from = int(recipe["run"]["synthetic_from_stage"])

    def has_stage(self, n: int) -> bool:
        return n in self.stages

    def score_columns(self) -> list[str]:
        return [f"score_{f.name}" for f in self.all]

    def applies(self, f: Filter, s: Sample) -> bool:
        if not s.synthetic or f.mandatory:
            return True
        if f.skip_synthetic:
            return False
        return f.stage >= self.synthetic_from or f.name in ALWAYS_FOR_SYNTHETIC


def read_sidecar(store: Store, rel: str | None) -> str | None:
    if rel is None:
        return None
    try:
        return store.read_bytes(rel).decode("utf-8", errors="replace").strip()
    except OSError:
        return None


def read_input(store: Store, rel: str) -> tuple[bytes, str | None]:
    """(bytes, None), or (b"", why the file cannot be read)."""
    try:
        return store.read_bytes(rel), None
    except OSError as e:
        return b"", f"cannot read: {_why(e)}"


def _why(e: OSError) -> str:
    text = e.strerror or str(e).strip()  # the OS's reason locally; an object store's message is several lines
    return text.splitlines()[0] if text else type(e).__name__


def process_file(plan: Plan, root, rel: str, sidecars: dict[str, str], thumb_side: int = 96) -> dict:
    """Never raises for bad input: every failure becomes a rejection with a reason. `root`: a folder, a URI or a
    qimage.datapipe.storage.Store.

    An edit pair (sidecars with `target` or `edit_error`, see qimage.datapipe.pairs) is one row: the filters score
    the source, edit_pair checks the target, and a kept row also ships the target's bytes."""
    store = open_store(root)
    data, read_error = read_input(store, rel)
    s = Sample(root, rel, data, read_sidecar(store, sidecars.get("txt")), read_sidecar(store, sidecars.get("json")), 0)
    target_rel = sidecars.get(P.TARGET)
    if target_rel is not None:
        t_data, t_error = read_input(store, target_rel)
        s.target = Sample(root, target_rel, t_data, read_sidecar(store, sidecars.get(P.TARGET_TXT)),
                          read_sidecar(store, sidecars.get(P.TARGET_JSON)), 0)
        s.target.read_error = t_error
    s.edit_error = sidecars.get(P.EDIT_ERROR)
    if target_rel is not None or s.edit_error:
        s.edit, s.instruction = P.edit_info(s.meta, s.target.meta if s.target else {})
        if s.edit is None:  # the source's JSON changed since discovery; edit_pair still has to judge the pair
            s.edit = {}
    row = {
        "id": sample_id(rel), "path": display_path(rel), "size_bytes": len(data), "caption": s.caption, "has_caption": s.has_caption,
        "meta": s.meta_text, "synthetic": s.synthetic, "width": 0, "height": 0, "format": "",
        "stage": None, "filter": None, "reason": None, "score": None, "phash": None, "passed_later": False,
        "reasons": [], "lang": "unknown", "category": "unknown", "bucket": "", "ocr": "", "ocr_text": "", "image": None, "thumb": None,
        "target_path": display_path(target_rel) if target_rel is not None else None, "target_image": None,
        "target_caption": s.target.caption if s.target else None, "target_meta": s.target.meta_text if s.target else None,
        "instruction": s.instruction if s.edit is not None else None,
        "edit": json.dumps(s.edit, ensure_ascii=False, sort_keys=True) if s.edit is not None else None,
        **{c: None for c in plan.score_columns()},
    }
    fails: list[tuple] = []  # (stage, filter, reason, score): the first is the primary rejection
    if read_error:
        fails.append((1, "broken_file", read_error, float("nan")))
    for f in ([] if read_error else plan.filters):
        if fails and plan.cascade and f.stage != fails[0][0]:
            break  # every failing filter of the rejecting stage is recorded, later stages are not run
        if not plan.applies(f, s):
            continue
        if f.stage >= 4 and plan.has_stage(4) and s.ocr is None and s.rgb is not None:
            _stage4(plan, s, row)
        try:
            v = f(s)
        except Exception as e:  # a filter bug must not lose the file: it is rejected and the report shows why
            v = Verdict(False, float("nan"), f"error in filter: {type(e).__name__}: {e}")
        if f.name == "duplicate":
            row["phash"] = to_signed(phash(s.grey))
        if f.name != "broken_file":
            row[f"score_{f.name}"] = None if math.isnan(v.score) else float(v.score)
        if not v.keep:
            fails.append((f.stage, f.name, v.reason, v.score))
            if f.name == "broken_file":
                break  # nothing else can be measured
    first = fails[0] if fails else None
    if s.rgb is not None:
        row.update(width=s.width, height=s.height, format=s.format)
        if first is not None:  # the report shows rejected examples; duplicates get theirs from the kept bytes
            row["thumb"] = s.thumbnail(thumb_side)
    if first is None and s.rgb is not None:
        if plan.has_stage(4) and s.ocr is None:
            _stage4(plan, s, row)
        if plan.has_stage(6):
            row["category"] = L.category(s, row["lang"], plan.recipe["labels"]["category"])
        row["bucket"] = L.bucket(s.width, s.height, plan.recipe["labels"]["buckets"])
        row["image"] = s.encoded()
        if s.target is not None:
            row["target_image"] = s.target.encoded()  # edit_pair decoded it (it was kept)
    row["passed_later"] = first is None
    if first is not None:
        row["stage"], row["filter"], row["reason"] = first[0], first[1], first[2]
        row["score"] = None if first[3] is None or math.isnan(first[3]) else float(first[3])
    row["reasons"] = [f"{name}: {why}" for _, name, why, _ in fails]
    return row


def _stage4(plan: Plan, s: Sample, row: dict) -> None:
    boxes, how = run_ocr(s, plan.recipe["ocr"])
    s.ocr = boxes
    row["ocr"] = how
    row["ocr_text"] = "\n".join(t for _, t, _ in boxes)
    row["lang"] = language(boxes, int(plan.recipe["labels"]["lang"]["min_chars"]))
