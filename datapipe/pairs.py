"""Edit pairs: a source image and its edited target, cleaned as ONE sample and read back for edit training.

Folder convention (docs/contracts.md section 2; what `qimage synth KIND --edit-pairs` writes): a source's sidecar
`ID.json` names its target in
    {"edit": {"target": "edits/ID.png", "instruction": "Replace the text ...", ...}}
with `target` relative to the source's own folder, inside the input folder. The target is an image like any other
and may have its own `.txt` / `.json` sidecars (synth's carry the changed region in `edit.region`); its `edit` keys
add to the source's (the source's win) and its `edit.instruction` stands in when the source has none.

Discovery (`pair_edits`, called by sample.discover) pairs every such source with its target: the target is then not
an input of its own, so duplicate detection never compares it with its source (edit pairs are near-identical by
design) and the pair is kept or rejected as a whole. The mandatory `edit_pair` filter (stage 1) checks the target
(readable, decodes, the source's size, an instruction). A declaration that cannot be paired (target missing or
hidden, outside the input folder, a sidecar, the sample itself, or already paired with another source) rejects the
source with that reason. A file some other source names as its target is never a source itself: chains are not
followed.

`read_pairs` gives the trainer the kept pairs of a `qimage data run` output as PIL images.
"""
from __future__ import annotations

import io
import json
import posixpath
from pathlib import Path
from typing import Iterable, Iterator

# sidecars[source] keys that discovery adds for a pair (besides the source's own "txt" / "json"): the target image
# and its sidecars are paths relative to the root; EDIT_ERROR is a message, not a path.
TARGET, TARGET_TXT, TARGET_JSON, EDIT_ERROR = "target", "target_txt", "target_json", "edit_error"
PATH_KEYS = ("txt", "json", TARGET, TARGET_TXT, TARGET_JSON)


def declared_target(meta_bytes: bytes) -> str | None:
    """The `edit.target` a sidecar JSON declares (any JSON value; None when there is none)."""
    if b'"target"' not in meta_bytes:  # most sidecars: no need to parse them
        return None
    try:
        meta = json.loads(meta_bytes.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    edit = meta.get("edit") if isinstance(meta, dict) else None
    if not isinstance(edit, dict) or "target" not in edit:
        return None
    return edit["target"]


def resolve_target(source: str, target) -> tuple[str | None, str | None]:
    """(target path relative to the root, None) or (None, why it cannot be one). `source` is relative to the root."""
    if not isinstance(target, str) or not target.strip():
        return None, f"edit.target {target!r} is not a path"
    t = target.strip().replace("\\", "/")
    if t.startswith("/"):
        return None, f"edit target {target}: must be relative to the source's folder"
    rel = posixpath.normpath(posixpath.join(posixpath.dirname(source), t))
    if rel == ".." or rel.startswith("../"):
        return None, f"edit target {target}: outside the input folder"
    return rel, None


def pair_edits(files: set[str], inputs: list[str], sidecars: dict[str, dict[str, str]], read) -> list[str]:
    """Pair sources with targets in place: sidecars[source] gains TARGET (+ TARGET_TXT / TARGET_JSON) or EDIT_ERROR;
    returns the inputs less the paired targets. `files`: every non-hidden file under the root (relative paths);
    `read(rel) -> bytes` reads a sidecar."""
    input_set = set(inputs)
    declared: dict[str, tuple[str | None, str | None]] = {}
    for rel in inputs:
        js = sidecars.get(rel, {}).get("json")
        if js is None:
            continue
        try:
            target = declared_target(read(js))
        except OSError:
            continue  # process_file reads the sidecar again and records what it can
        if target is None:
            continue
        t, err = resolve_target(rel, target)
        if err is None:
            if t == rel:
                t, err = None, f"edit target {target}: is the sample itself"
            elif t not in files:
                t, err = None, f"edit target {target}: not found (missing, or hidden)"
            elif t not in input_set:
                t, err = None, f"edit target {target}: is a caption/metadata sidecar, not an image"
        declared[rel] = (t, err)
    named = {t for t, err in declared.values() if err is None}
    claimed: dict[str, str] = {}
    for src in sorted(declared):
        if src in named:
            continue  # another source's target: chains are not followed
        t, err = declared[src]
        if err is None and t in claimed:
            err = f"edit target {t}: already paired with {claimed[t]}"
        if err is not None:
            sidecars.setdefault(src, {})[EDIT_ERROR] = err
            continue
        claimed[t] = src
        cars = sidecars.setdefault(src, {})
        cars[TARGET] = t
        for ext, key in (("txt", TARGET_TXT), ("json", TARGET_JSON)):
            if ext in sidecars.get(t, {}):
                cars[key] = sidecars[t][ext]
    for t in claimed:
        sidecars.pop(t, None)
    return [rel for rel in inputs if rel not in claimed]


def edit_info(source_meta: dict, target_meta: dict) -> tuple[dict | None, str]:
    """The pair's edit metadata (the target's `edit` keys updated with the source's) and its instruction ("" when
    neither sidecar has one); (None, "") when the source declares no edit target."""
    src = source_meta.get("edit")
    if not isinstance(src, dict) or "target" not in src:
        return None, ""
    tgt = target_meta.get("edit") if isinstance(target_meta.get("edit"), dict) else {}
    edit = {**tgt, **src}
    instruction = next((x for x in (src.get("instruction"), tgt.get("instruction"))
                        if isinstance(x, str) and x.strip()), "")
    return edit, instruction.strip()


# -- reading the output ------------------------------------------------------------------------------------------
READ_COLUMNS = ["id", "path", "image", "caption", "meta", "target_path", "target_image", "target_caption",
                "target_meta", "instruction", "edit"]


def _parquet_files(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            sub = p / "kept" if (p / "kept").is_dir() else p
            out += sorted(sub.glob("*.parquet"))
        else:
            out.append(p)
    return out


def read_pairs(parquet_files: str | Path | Iterable[str | Path], batch_size: int = 64) -> Iterator[dict]:
    """The edit pairs among kept rows, in file then row order, decoded one batch at a time:
    dict(source: PIL RGB, target: PIL RGB, instruction: str, caption: str, meta: dict, id, path, target_path,
    target_caption: str, target_meta: dict, edit: dict). Rows without a target (plain samples) are skipped.

    `parquet_files`: kept shard files, or a folder of them, or a `qimage data run` output folder (its kept/)."""
    import pyarrow.parquet as pq
    from PIL import Image

    def rgb(data: bytes):
        im = Image.open(io.BytesIO(data))
        im.load()
        return im if im.mode == "RGB" else im.convert("RGB")

    for f in _parquet_files(parquet_files):
        pf = pq.ParquetFile(f)
        if "target_image" not in pf.schema_arrow.names:
            continue  # written before edit pairs existed: no pairs in it
        for batch in pf.iter_batches(batch_size=batch_size, columns=READ_COLUMNS):
            for r in batch.to_pylist():
                if r["target_image"] is None:
                    continue
                yield {"source": rgb(r["image"]), "target": rgb(r["target_image"]), "instruction": r["instruction"] or "",
                       "caption": r["caption"] or "", "meta": json.loads(r["meta"] or "{}"), "id": r["id"],
                       "path": r["path"], "target_path": r["target_path"], "target_caption": r["target_caption"] or "",
                       "target_meta": json.loads(r["target_meta"] or "{}"), "edit": json.loads(r["edit"] or "{}")}
