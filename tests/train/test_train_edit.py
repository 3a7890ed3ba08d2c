"""Edit training: the objective (target tokens only, the source at frame 1), initialisation from a text-to-image
model, exact resume, and what a run writes (an edit model directory both qimage and diffusers load)."""
import csv

import numpy as np
import pytest
import torch

from qimage.errors import UserError
from qimage.train.checkpoint import STATE_FILE, load_state
from qimage.train.config import from_dict
from qimage.train.edit import EditConfig, EditTrainer, read_pairs, run


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    from qimage.synth.runner import RunConfig, run as synth

    root = tmp_path_factory.mktemp("pairs") / "words"
    synth(RunConfig(kind="words", n=8, out=str(root), width=128, height=64, seed=3, edit_pairs=True), progress=False)
    return root


@pytest.fixture(scope="module")
def edit_init(tmp_path_factory):
    """A tiny edit model that edits 128x64 inputs at their own size (diffusers' megapixel rule is slow here)."""
    import json

    from qimage.model_dir import init_model_dir

    d = init_model_dir(tmp_path_factory.mktemp("models") / "tiny-edit", "tiny-edit", seed=0)
    (d / "qimage.json").write_text(json.dumps({"condition_area": 128 * 64}))
    return d


def _config(edit_init, t2i, pairs_dir, out, **over):
    cfg = {"out": str(out), "seed": 0, "model": {"dir": str(edit_init), "transformer": str(t2i)},
           "sources": {"words": {"path": str(pairs_dir)}}, "batch_size": 4, "caption_dropout": 0.3,
           "optim": {"lr": 1e-3, "warmup_steps": 2}, "stages": [{"name": "e", "steps": 4, "buckets": ["128x64"]}],
           "log": {"every": 1, "checkpoint_every": 100, "sample_every": 0, "eval_every": 0}}
    cfg.update(over)
    return from_dict(EditConfig, cfg)


def test_pairs_are_read_with_instruction_and_target(pairs_dir):
    from qimage.train.config import Source

    recs = read_pairs(Source(path=str(pairs_dir)))
    assert len(recs) == 8 and all(r.target is not None and r.target.path.endswith(f"edits/{r.key}.png") for r in recs)
    assert all(r.caption.startswith(("Change the text to", "Make the text", "Make the background")) for r in recs)


def test_folder_pairs_follow_the_data_pipelines_convention(tmp_path):
    """The trainer reads a folder as qimage.datapipe.pairs does: the target's instruction stands in for a source
    without one, and a target outside the folder or a pair with no instruction is a one-line error."""
    import json

    from PIL import Image

    from qimage.train.config import Source

    (tmp_path / "edits").mkdir()
    for name in ("a.png", "edits/a.png"):
        Image.new("RGB", (64, 64), "white").save(tmp_path / name)
    (tmp_path / "edits" / "a.json").write_text(json.dumps({"edit": {"instruction": "Make the background red."}}))
    (tmp_path / "a.json").write_text(json.dumps({"edit": {"target": "edits/a.png"}}))
    (rec,) = read_pairs(Source(path=str(tmp_path)))
    assert rec.instruction == rec.caption == "Make the background red." and rec.target.path == str(tmp_path / "edits/a.png")
    (tmp_path / "edits" / "a.json").write_text("{}")
    with pytest.raises(UserError, match="a.json: edit pair without an instruction"):
        read_pairs(Source(path=str(tmp_path)))
    (tmp_path / "a.json").write_text(json.dumps({"edit": {"target": "../a.png", "instruction": "x"}}))
    with pytest.raises(UserError, match="outside the input folder"):
        read_pairs(Source(path=str(tmp_path)))


@pytest.mark.parametrize("breakage, needle", [
    (lambda d: (d / "a.json").write_text('{"edit": {"target": "/abs/b.png", "instruction": "x"}}'),
     "a.json: edit target /abs/b.png: must be relative to the source's folder"),
    (lambda d: (d / "a.json").write_text('{"edit": {"target": 7, "instruction": "x"}}'), "a.json: edit.target 7 is not a path"),
    (lambda d: (d / "edits" / "a.png").unlink(), "a.json: edit pair without its target image"),
    (lambda d: (d / "a.png").unlink(), "a.json: edit pair without its source image"),
    (lambda d: _png(d / "edits" / "a.png", (32, 64)), "a.json: source (64, 64) and target (32, 64) differ in size"),
    (lambda d: (d / "edits" / "a.png").write_bytes(b"not a png"), "a.json: cannot read the pair's images: "),
    (lambda d: (d / "edits" / "a.json").write_text("{oops"), "edits/a.json: not valid JSON"),
    (lambda d: (d / "a.json").write_text('{"caption": "no edit here"}'), "holds no edit pairs"),
], ids=["absolute", "not-a-path", "no-target", "no-source", "sizes", "corrupt-target", "target-json", "no-pairs"])
def test_a_broken_pair_folder_is_one_error_naming_the_file(tmp_path, breakage, needle):
    from qimage.train.config import Source

    (tmp_path / "edits").mkdir()
    for name in ("a.png", "edits/a.png"):
        _png(tmp_path / name, (64, 64))
    (tmp_path / "a.json").write_text('{"edit": {"target": "edits/a.png", "instruction": "Make the text red."}}')
    assert len(read_pairs(Source(path=str(tmp_path)))) == 1
    breakage(tmp_path)
    with pytest.raises(UserError) as e:
        read_pairs(Source(path=str(tmp_path)))
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def _png(path, size):
    from PIL import Image

    Image.new("RGB", size, "white").save(path, format="PNG")


def test_starts_from_the_text_to_image_transformer(tmp_path, edit_init, tiny_model_dir, pairs_dir):
    from qimage.model_dir import load_components

    trainer = EditTrainer(_config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "r"), tmp_path / "r",
                          _world(), torch.device("cpu"), progress=False)
    t2i = load_components(tiny_model_dir)["transformer"].state_dict()
    for name, t in trainer.model.state_dict().items():
        assert torch.equal(t, t2i[name]), name


def test_loss_reads_only_the_target_tokens(tmp_path, edit_init, tiny_model_dir, pairs_dir, monkeypatch):
    trainer = EditTrainer(_config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "r"), tmp_path / "r",
                          _world(), torch.device("cpu"), progress=False)
    seen = {}
    forward = trainer.ddp.forward

    def spy(hidden, embeds, mask, s, shapes, **kw):
        out = forward(hidden, embeds, mask, s, shapes, **kw)[0].clone()
        n = shapes[0][0][1] * shapes[0][0][2]
        seen.update(n=n, total=hidden.shape[1], shapes=shapes[0])
        out[:, n:] = float("nan")  # condition tokens' outputs: a loss that read them would be NaN
        return (out,)

    monkeypatch.setattr(trainer.ddp, "forward", spy)
    recs = trainer.records["words"]
    keyed = [(("words", i), recs[i]) for i in range(2)]
    g = torch.Generator().manual_seed(0)
    loss = trainer.batch_loss(keyed, (128, 64), [False, True], torch.tensor([0.5, 0.9]),
                              torch.randn(2, 4, 8, 16, generator=g), torch.randn(2, 4, 8, 16, generator=g))
    assert torch.isfinite(loss) and loss.item() > 0
    assert seen["shapes"] == [(1, 4, 8), (1, 4, 8)] and seen["total"] == 2 * seen["n"] == 64  # target, then source


def test_changed_mask_marks_every_latent_cell_a_pixel_changes_in():
    from PIL import Image

    from qimage.train.regions import CHANGED_TOL, changed_latent_mask

    src = np.full((16, 32, 3), 200, np.uint8)
    tgt = src.copy()
    tgt[3, 9, 1] += CHANGED_TOL + 1  # one channel of one pixel in cell (row 0, col 1): the whole cell counts
    tgt[12, 30] += CHANGED_TOL  # at the tolerance: resampling noise, not an edit
    m = changed_latent_mask(Image.fromarray(src), Image.fromarray(tgt), (32, 16), 8)
    assert m.shape == (1, 2, 4)
    assert m.tolist() == [[[0, 1, 0, 0], [0, 0, 0, 0]]]


def test_changed_weight_weights_the_cells_the_edit_changes(tmp_path, edit_init, tiny_model_dir, pairs_dir):
    from qimage.train.buckets import fit_quads

    cfg = _config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "r", loss={"changed_weight": 5.0})
    trainer = EditTrainer(cfg, tmp_path / "r", _world(), torch.device("cpu"), progress=False)
    recs = trainer.records["words"]
    keyed = [(("words", i), recs[i]) for i in range(len(recs))]
    w = trainer.edit_weights(keyed, (128, 64), 16)  # packed: 4 x 8 tokens of 2x2 cells x 16 channels x 4
    assert w.shape == (len(recs), 32, 64) and set(w.unique().tolist()) == {1.0, 5.0}
    cells = w[:, :, 0].reshape(len(recs), 4, 8)  # channel 0 of each token's top-left latent cell
    for (_, r), c in zip(keyed, cells):
        kind = r.meta["edit"]["type"]
        if kind == "replace_text" or kind == "recolor_text":  # only the text changes: inside its quad's cells
            quads = [m["lines"][0]["quad"] for m in (r.meta, r.target.meta)]  # old and new word
            pts = np.concatenate(fit_quads(quads, (r.width, r.height), (128, 64)))
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            rows, cols = torch.nonzero(c == 5, as_tuple=True)
            assert len(rows) > 0, r.name
            assert rows.min() >= int(y0 // 16) and rows.max() <= int(y1 // 16), r.name
            assert cols.min() >= int(x0 // 16) and cols.max() <= int(x1 // 16), r.name
        else:  # a new background changes almost every cell
            assert (c == 5).float().mean() > 0.9, (r.name, kind)
    base = EditTrainer(_config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "b"), tmp_path / "b", _world(),
                       torch.device("cpu"), progress=False)
    assert base.edit_weights(keyed, (128, 64), 16) is None  # the reference loss by default
    from qimage.train.config import check

    with pytest.raises(UserError, match="loss.changed_weight must be positive"):
        check(_config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "c", loss={"changed_weight": 0.0}))


def test_resumed_run_matches_uninterrupted(tmp_path, edit_init, tiny_model_dir, pairs_dir):
    run(_config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "a"), progress=False)
    cfg = _config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "b")
    assert run(cfg, stop_at=2, progress=False)["stopped"]
    assert run(cfg, resume=True, progress=False)["step"] == 4
    sa, sb = load_state(tmp_path / "a" / STATE_FILE), load_state(tmp_path / "b" / STATE_FILE)
    for key in ("model", "ema"):
        for name, t in sa[key].items():
            assert torch.equal(t, sb[key][name]), (key, name)
    with open(tmp_path / "a" / "log.csv") as fa, open(tmp_path / "b" / "log.csv") as fb:
        assert list(csv.DictReader(fa))[-1]["loss"] == list(csv.DictReader(fb))[-1]["loss"]


def test_run_writes_an_edit_model_and_pair_grids(tmp_path, edit_init, tiny_model_dir, pairs_dir):
    import diffusers
    from PIL import Image

    from qimage.edit import EditPipeline
    from qimage.processor import load_processor

    cfg = _config(edit_init, tiny_model_dir, pairs_dir, tmp_path / "r",
                  log={"every": 1, "checkpoint_every": 100, "sample_every": 4, "sample_steps": 2, "sample_pairs": 2,
                       "eval_every": 4, "eval_pairs": 3})
    run(cfg, progress=False)
    out = tmp_path / "r"
    grid = Image.open(out / "samples" / "step-000004.png")
    assert grid.size[0] > 3 * 128 and grid.size[1] > 2 * 64  # 3 columns (source | target | edited) x 2 pairs
    with open(out / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["4"] and set(rows[0]) == set(EditTrainer.EVAL_FIELDS)
    assert EditPipeline.load(out / "model", device="cpu").settings.condition_area == 128 * 64  # kept from dir
    (out / "model" / "qimage.json").unlink()  # diffusers' rule, for the comparison below
    pipe = EditPipeline.load(out / "model", device="cpu")
    src = Image.open(pairs_dir / "words_000000.png")
    ours = pipe(src, "Make the text red.", steps=2, cfg=1.0, seeds=1, width=64, height=64)[0]
    ref = diffusers.QwenImageEditPipeline.from_pretrained(out / "model", processor=load_processor(out / "model" / "processor"))
    ref.set_progress_bar_config(disable=True)
    theirs = ref(src, "Make the text red.", num_inference_steps=2, width=64, height=64,
                 generator=torch.Generator().manual_seed(1)).images[0]
    assert np.abs(np.asarray(ours, float) - np.asarray(theirs, float)).mean() <= 0.05  # measured ~1e-5


def test_a_text_to_image_model_is_refused(tmp_path, tiny_model_dir, pairs_dir):
    with pytest.raises(UserError, match="is not an edit model"):
        EditTrainer(_config(tiny_model_dir, tiny_model_dir, pairs_dir, tmp_path / "r"), tmp_path / "r", _world(),
                    torch.device("cpu"), progress=False)


def _world():
    from qimage.train.distributed import World

    return World(rank=0, size=1, local_rank=0)


def test_cleaned_pair_shards_are_read_like_folders(tmp_path, pairs_dir):
    """`qimage data run` output: pair rows carry target_image and instruction; plain rows are not pairs."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from qimage.train.config import Source

    folder = {r.key: r for r in read_pairs(Source(path=str(pairs_dir)))}
    cols = {k: [] for k in ("id", "path", "image", "width", "height", "caption", "meta", "target_image",
                            "target_caption", "target_meta", "instruction", "edit")}
    for i, (key, r) in enumerate(sorted(folder.items())):
        plain = i == 0
        vals = dict(id=key, path=r.path, image=open(r.path, "rb").read(), width=r.width, height=r.height,
                    caption="a caption", meta=json.dumps(r.meta), target_image=None if plain else open(r.target.path, "rb").read(),
                    target_caption=None if plain else "target caption", target_meta=None if plain else "{}",
                    instruction=None if plain else r.instruction, edit=None if plain else "{}")
        for k, v in vals.items():
            cols[k].append(v)
    (tmp_path / "kept").mkdir()
    pq.write_table(pa.table(cols), tmp_path / "kept" / "part-0.parquet")
    shards = read_pairs(Source(path=str(tmp_path)))
    assert len(shards) == len(folder) - 1
    for r in shards:
        f = folder[r.key]
        assert r.caption == r.instruction == f.instruction  # the instruction is what the VL encoder reads
        assert np.array_equal(np.asarray(r.target.load()), np.asarray(f.target.load()))
        assert np.array_equal(np.asarray(r.load()), np.asarray(f.load()))
