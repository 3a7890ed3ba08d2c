"""Data: both sample forms read, buckets keep aspect ratio, the batch schedule is a deterministic epoch walk."""
import collections

import pytest

from qimage.errors import UserError
from qimage.train.buckets import assign, fit, make_buckets
from qimage.train.config import Source
from qimage.train.data import Schedule, caption_text, read_source


def test_buckets_cover_aspect_ratios_at_about_the_target_area():
    buckets = make_buckets(64, 16)
    assert (64, 64) in buckets and (96, 48) in buckets and (48, 96) in buckets
    for w, h in buckets:
        assert w % 16 == 0 and h % 16 == 0 and max(w / h, h / w) <= 2
        assert 0.6 <= w * h / 64 ** 2 <= 1.4
    assert assign(1000, 1000, buckets) == (64, 64)
    assert assign(2000, 1000, buckets) == (96, 48)
    assert assign(500, 1000, buckets) == (48, 96)


def test_fit_resizes_to_cover_and_centre_crops():
    from PIL import Image

    im = Image.new("RGB", (200, 50), "white")
    im.paste((255, 0, 0), (0, 0, 20, 50))  # a red strip at the far left, outside a centre crop
    out = fit(im, (64, 32))
    assert out.size == (64, 32)
    assert out.getpixel((0, 16))[1] > 200  # the left strip was cropped away, the aspect ratio kept


def test_folder_and_parquet_sources_read_the_same_captions(synth_dirs, parquet_dir):
    folder = read_source(Source(path=str(synth_dirs["pure"])))
    parquet = read_source(Source(path=str(parquet_dir)))
    assert len(folder) == len(parquet) == 12
    assert sorted(r.caption for r in folder) == sorted(r.caption for r in parquet)
    assert {(r.width, r.height) for r in parquet} == {(64, 64), (96, 48)}
    assert parquet[1].load().size == (parquet[1].width, parquet[1].height)
    assert folder[0].meta["lines"] and folder[0].load().size == (64, 64)
    assert len(read_source(Source(path=str(synth_dirs["pure"]), limit=5))) == 5


def test_missing_or_empty_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_source(Source(path=str(tmp_path / "nope")))
    with pytest.raises(UserError, match="no samples"):
        read_source(Source(path=str(tmp_path)))


def test_quoted_caption_mode():
    assert caption_text('On a white background, displaying black text "MILK".', "quoted") == "MILK"
    assert caption_text("A photo of a red circle.", "quoted") == "A photo of a red circle."
    assert caption_text('x "A"', "full") == 'x "A"'


def test_schedule_is_deterministic_one_bucket_per_batch_and_walks_epochs(synth_dirs, parquet_dir):
    records = {"a": read_source(Source(path=str(parquet_dir))), "b": read_source(Source(path=str(synth_dirs["scenes"])))}
    buckets = make_buckets(64, 16)
    mk = lambda: Schedule(records, {"a": 3, "b": 1}, buckets, 4, 200, seed=5, stage=1)
    s1, s2 = mk(), mk()
    batches = [s1.batch(t) for t in range(200)]
    assert batches == [s2.batch(t) for t in range(200)]
    assert [s2.batch(t) for t in (150, 3, 77)] == [batches[150], batches[3], batches[77]]  # random access
    counts = collections.Counter(n for n, _, _ in batches)
    assert 0.65 < counts["a"] / 200 < 0.85
    for name, bucket, idx in batches:
        assert len(idx) == 4
        assert {assign(records[name][i].width, records[name][i].height, buckets) for i in idx} == {bucket}
    # within one epoch of source a, every record appears at least once (6 at 64x64 and 6 at 96x48: 2 batches each)
    per = s1.batches_per_epoch("a")
    first_epoch = [idx for n, _, idx in batches if n == "a"][:per]
    assert per == 4 and {i for idx in first_epoch for i in idx} == set(range(12))
    assert Schedule(records, {"a": 3, "b": 1}, buckets, 4, 200, seed=6, stage=1).batch(0) != batches[0] or \
        Schedule(records, {"a": 3, "b": 1}, buckets, 4, 200, seed=6, stage=1).batch(1) != batches[1]
