"""duplicate (stage 1): near-duplicate images across the whole input; the best copy of each group is kept.

Score: imagehash's 64-bit perceptual hash (pHash: the grey image at 32 x 32, its 2-D DCT, the 8 x 8 lowest
frequencies compared with their median). Two images are duplicates when their hashes differ in at most `max_distance` bits
(0-5: the same picture re-encoded or resized; around 10: crops and edits) and, when either carries text, the
texts agree: rapidfuzz's ratio of the two (OCR text, or a synthetic render's own lines; whitespace and case
ignored) at least `text_min_similarity` (0-100). One template filled with other words is pHash-close, yet the
text is the point of a text sample; without OCR (`--stages` short of 4) the image alone decides. A rejected copy's
score is its distance to the copy that was kept.

Comparing all pairs is quadratic, so the hash is cut into `max_distance + 1` bands: by the pigeonhole principle two
hashes within the distance agree exactly on at least one band, so only hashes sharing a (band, value) key are
compared. The pairs found are the edges of a graph whose connected components (scipy) are the groups; per group the
best member survives: one that passed every later filter, then the most pixels, the largest file, the first path.
"""
from __future__ import annotations

import numpy as np

from qimage.datapipe.filters import Filter, Verdict, register


def phash(grey: np.ndarray) -> int:
    """imagehash's pHash of a uint8 grey image, as one 64-bit integer (row-major bits, first bit highest)."""
    import imagehash
    from PIL import Image

    bits = imagehash.phash(Image.fromarray(grey)).hash.ravel()
    return int(np.packbits(bits).view(">u8")[0])


def to_signed(h: int) -> int:
    """Parquet has no uint64 column type that every reader agrees on; store the same 64 bits as int64."""
    return h - (1 << 64) if h >= 1 << 63 else h


def hamming(a: int, b: int) -> int:
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")


def bands(h: int, n_bands: int) -> list[int]:
    edges = np.linspace(0, 64, n_bands + 1).astype(int)
    u = h & ((1 << 64) - 1)
    return [(u >> int(lo)) & ((1 << int(hi - lo)) - 1) for lo, hi in zip(edges[:-1], edges[1:])]


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def group_duplicates(hashes: list[int], max_distance: int, texts: list[str | None] | None = None,
                     text_min_similarity: float = 90.0) -> list[list[int]]:
    """Indices of hashes grouped into near-duplicate clusters (only clusters of 2 or more), deterministic order.

    Clusters are transitive (single linkage): with A~B and B~C within max_distance, A and C share a cluster even when
    they are further apart, as near-duplicate chains (re-encodes of re-encodes) usually are. With `texts`, a pair
    of which either has text is an edge only when the two texts are at least `text_min_similarity` similar.
    """
    from rapidfuzz import fuzz
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_bands = max_distance + 1
    norm = [_norm(t) for t in texts] if texts is not None else None
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, h in enumerate(hashes):
        for b, v in enumerate(bands(h, n_bands)):
            buckets.setdefault((b, v), []).append(i)
    edges: set[tuple[int, int]] = set()
    for members in buckets.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                if (i, j) in edges or hamming(hashes[i], hashes[j]) > max_distance:
                    continue
                if norm and (norm[i] or norm[j]) and fuzz.ratio(norm[i], norm[j]) < text_min_similarity:
                    continue
                edges.add((i, j))
    if not edges:
        return []
    a, b = zip(*sorted(edges))
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(hashes), len(hashes)))
    _, label = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(label):
        groups.setdefault(int(g), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


@register
class Duplicate(Filter):
    name = "duplicate"
    stage = 1
    kind = "global"
    params = {"max_distance": 6, "text_min_similarity": 90.0}

    def measure(self, sample) -> float:
        return float("nan")  # the hash goes to its own column; the score is set by the global pass

    def decide(self, score: float) -> Verdict:
        return Verdict(True, score)  # the per-row pass cannot know; see resolve()

    def resolve(self, rows: list[dict]) -> dict[int, tuple[float, str]]:
        """rows: dicts with phash, passed_later, pixels, size_bytes, path and optionally text. Returns
        {row index: (distance, reason)} for every row to reject."""
        idx = [i for i, r in enumerate(rows) if r["phash"] is not None]
        groups = group_duplicates([rows[i]["phash"] for i in idx], int(self.cfg["max_distance"]),
                                  [rows[i].get("text") for i in idx], float(self.cfg["text_min_similarity"]))
        out = {}
        for g in groups:
            members = [idx[k] for k in g]
            best = min(members, key=lambda i: (not rows[i]["passed_later"], -rows[i]["pixels"],
                                               -rows[i]["size_bytes"], rows[i]["path"]))
            for i in members:
                if i != best:
                    d = hamming(rows[i]["phash"], rows[best]["phash"])
                    out[i] = (float(d), f"near-duplicate of {rows[best]['path']} (pHash distance {d})")
        return out

    def thresholds(self):
        return [("max", float(self.cfg["max_distance"]))]
