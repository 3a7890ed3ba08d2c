"""Global near-duplicate grouping, OCR language split, category, buckets and weights."""
from __future__ import annotations

import cv2
import numpy as np
import skimage.data as skd

from qimage.datapipe import labels as L
from qimage.datapipe.demo import draw_text
from qimage.datapipe.filters.duplicate import Duplicate, bands, group_duplicates, hamming, phash
from qimage.datapipe.ocr import language, run_ocr
from qimage.datapipe.recipe import load as load_recipe
from datapipe_helpers import sample

GREY = lambda a: cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a


def test_phash_sees_resized_and_recompressed_copies_but_not_other_photos():
    a = phash(GREY(skd.astronaut()))
    small = phash(GREY(cv2.resize(skd.astronaut(), (200, 200), interpolation=cv2.INTER_AREA)))
    other = phash(GREY(skd.coffee()))
    mirrored = phash(GREY(skd.astronaut()[:, ::-1].copy()))
    assert hamming(a, small) <= 2  # measured 0 (imagehash 4.3); 2 bits of margin, a third of max_distance
    assert hamming(a, other) > 16 and hamming(a, mirrored) > 16  # measured 36 and 32


def test_bands_find_every_pair_within_the_distance():
    rng = np.random.default_rng(1)
    base = [int(x) for x in rng.integers(0, 2**63, 50)]
    hashes, twins = list(base), []
    for h in base[:10]:  # a twin at distance exactly 6, bits spread over the whole hash
        bits = rng.choice(64, 6, replace=False)
        t = h
        for b in bits:
            t ^= 1 << int(b)
        hashes.append(t)
    groups = group_duplicates(hashes, 6)
    found = {frozenset(g) for g in groups}
    for i in range(10):
        assert frozenset({i, 50 + i}) in found
    assert len(bands(base[0], 7)) == 7


def test_duplicate_keeps_the_best_copy():
    h = 0x123456789ABCDEF0
    rows = [
        {"phash": h, "passed_later": True, "pixels": 100, "size_bytes": 10, "path": "small.jpg"},
        {"phash": h ^ 0b11, "passed_later": True, "pixels": 400, "size_bytes": 5, "path": "big.jpg"},
        {"phash": h ^ 0b1, "passed_later": False, "pixels": 900, "size_bytes": 50, "path": "blurred.jpg"},
        {"phash": ~h, "passed_later": True, "pixels": 100, "size_bytes": 10, "path": "other.jpg"},
    ]
    out = Duplicate().resolve(rows)
    assert set(out) == {0, 2}  # big.jpg survives: passes later filters and has the most pixels among those
    assert "big.jpg" in out[0][1]


def test_near_duplicate_text_renders_with_other_text_are_both_kept():
    h = 0x0F0F0F0F12345678
    rows = [
        {"phash": h, "passed_later": True, "pixels": 100, "size_bytes": 10, "path": "menu_a.png", "text": "Soup 4.50"},
        {"phash": h ^ 0b101, "passed_later": True, "pixels": 100, "size_bytes": 9, "path": "menu_b.png",
         "text": "Cake 3.20"},
        {"phash": h ^ 0b1, "passed_later": True, "pixels": 100, "size_bytes": 8, "path": "menu_a2.png",
         "text": "soup  4.50"},  # the same text, spaced and cased otherwise: a duplicate of menu_a
        {"phash": h ^ 0b11, "passed_later": True, "pixels": 100, "size_bytes": 7, "path": "photo.jpg", "text": ""},
    ]
    out = Duplicate().resolve(rows)
    assert set(out) == {2} and "menu_a.png" in out[2][1]  # a picture without text is not a copy of one with text
    assert Duplicate(text_min_similarity=0).resolve(rows).keys() == {1, 2, 3}  # 0: the image alone decides


def test_ocr_language_split_en_zh_none():
    cfg = load_recipe()["ocr"]
    bg = np.full((320, 640, 3), 235, np.uint8)
    en = sample(draw_text(bg, [("HELLO WORLD", 40, 110, 64)]))
    zh = sample(draw_text(bg, [("欢迎光临", 40, 100, 80)]))
    none = sample(skd.chelsea())
    langs = []
    for s in (en, zh, none):
        boxes, _ = run_ocr(s, cfg)
        langs.append(language(boxes))
    assert langs == ["en", "zh", "none"]


def test_language_rules():
    box = np.zeros((4, 2))
    assert language([(box, "Hello", 1.0)]) == "en"
    assert language([(box, "你好 hi", 1.0)]) == "zh"
    assert language([(box, "Привет", 1.0)]) == "other"
    assert language([(box, "12:30", 1.0)]) == "none"


def test_synthetic_samples_use_their_ground_truth_lines_not_ocr():
    meta = {"lines": [{"text": "abc", "quad": [[0, 0], [100, 0], [100, 20], [0, 20]]}], "kind": "pure", "lang": "en"}
    s = sample(np.full((300, 300, 3), 255, np.uint8), meta=meta)
    boxes, how = run_ocr(s, load_recipe()["ocr"])
    assert how == "meta" and boxes[0][1] == "abc"


def test_buckets_and_weights():
    cfg = load_recipe()["labels"]
    assert L.bucket(512, 512, cfg["buckets"]) == "256x256"
    assert L.bucket(1400, 1400, cfg["buckets"]) == "1328x1328"
    w, h = (int(x) for x in L.bucket(1920, 1080, cfg["buckets"]).split("x"))
    assert w > h and abs(w / h - 16 / 9) < 0.1
    rows = [{"category": "general", "lang": "none"}] * 8 + [{"category": "portrait", "lang": "none"}] * 2 + \
           [{"category": "text", "lang": "en"}] * 1
    ws = L.weights(rows, cfg, True, True)
    share = {c: sum(x for x, r in zip(ws, rows) if r["category"] == c) / sum(ws) for c in ("general", "portrait", "text")}
    assert share["general"] < 8 / 11 and share["text"] > 1 / 11  # moved towards the 0.6 / 0.2 / 0.2 targets


def test_category_portrait_and_general():
    cfg = load_recipe()["labels"]["category"]
    assert L.category(sample(skd.astronaut()), "none", cfg) == "portrait"
    assert L.category(sample(skd.coffee()), "none", cfg) == "general"
