"""Editing against diffusers' QwenImageEditPipeline on the same tiny edit model, and against its own rules."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from qimage.edit import EditPipeline, calculate_dimensions, check_edit_model
from qimage.errors import UserError
from qimage.processor import load_processor
from qimage.text_encoder import EDIT_DROP, EDIT_TEMPLATE, encode_edit_prompts

INSTRUCTION = 'Change the text to "QWEN".'


@pytest.fixture(scope="module")
def edit_dir(tmp_path_factory):
    from qimage.quiet import quiet_libraries
    from qimage.model_dir import init_model_dir

    quiet_libraries()
    return init_model_dir(tmp_path_factory.mktemp("models") / "tiny-edit", "tiny-edit", seed=0)  # no qimage.json


@pytest.fixture(scope="module")
def pipe(edit_dir):
    return EditPipeline.load(edit_dir, device="cpu")


@pytest.fixture(scope="module")
def photo():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8))


def _diffusers(edit_dir, cls_name="QwenImageEditPipeline"):
    import diffusers

    ref = getattr(diffusers, cls_name).from_pretrained(edit_dir, processor=load_processor(edit_dir / "processor"))
    ref.set_progress_bar_config(disable=True)
    return ref


def test_edit_template_prefix_is_the_dropped_part(pipe):
    prefix = EDIT_TEMPLATE.split("<|vision_start|>")[0]
    ids = pipe.tokenizer(EDIT_TEMPLATE.format("x"))["input_ids"]
    assert len(pipe.tokenizer(prefix)["input_ids"]) == EDIT_DROP == 64
    assert pipe.tokenizer.convert_ids_to_tokens(ids[EDIT_DROP]) == "<|vision_start|>"  # the kept part starts there


def test_embeddings_equal_diffusers_encode_prompt(edit_dir, pipe, photo):
    ref = _diffusers(edit_dir)
    vl = photo.resize(calculate_dimensions(256 * 256, photo.width / photo.height), Image.LANCZOS)
    ours, mask = encode_edit_prompts(pipe.text_encoder, pipe.processor, [INSTRUCTION], [vl], "cpu")
    theirs, their_mask = ref.encode_prompt(INSTRUCTION, image=vl, device="cpu")
    n_vision = int(ref.processor(text=["<|image_pad|>"], images=[vl])["input_ids"].shape[1])
    assert ours.shape == theirs.shape and ours.shape[1] == n_vision + 2 + len(pipe.tokenizer(INSTRUCTION)["input_ids"]) + 5
    assert (ours - theirs).abs().max().item() == 0.0  # same encoder, same tokens: bit-identical (measured 0)
    assert their_mask is None and mask.all()  # diffusers drops an all-ones mask


def test_resize_rule_matches_diffusers(pipe):
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit import calculate_dimensions as ref_dims

    for w, h in [(90, 60), (1000, 1000), (333, 1777), (1920, 1080), (64, 64)]:
        inputs = pipe.inputs([Image.new("RGB", (w, h))])
        cw, ch = ref_dims(1024 * 1024, w / h)[:2]
        assert inputs.vae_images[0].size == (cw, ch) and (inputs.width, inputs.height) == (cw // 16 * 16, ch // 16 * 16)


def test_condition_tokens_take_frame_index_one(pipe, photo, monkeypatch):
    seen = {}
    forward = pipe.transformer.forward

    def spy(hidden, *args, **kwargs):
        seen["shapes"], seen["n"] = args[3], hidden.shape[1]
        return forward(hidden, *args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    pipe(photo, INSTRUCTION, steps=2, cfg=1.0, width=64, height=64, output="latent")
    from qimage.models.rope import image_positions

    target, cond = seen["shapes"][0]
    cw, ch = calculate_dimensions(1024 * 1024, 1.5)
    assert target == (1, 4, 4) and cond == (1, ch // 16, cw // 16)  # 8x VAE, 2x2 patches
    assert seen["n"] == 16 + cond[1] * cond[2]  # target tokens first, then the condition's
    frames = image_positions(seen["shapes"][0])[:, 0]
    assert frames[:16].eq(0).all() and frames[16:].eq(1).all()  # MSRoPE: the condition is frame 1


@pytest.mark.parametrize("cfg", [1.0, 4.0])
def test_same_image_as_diffusers(edit_dir, pipe, photo, cfg):
    ours = pipe(photo, INSTRUCTION, negative_prompt=" " if cfg > 1 else None, steps=2, cfg=cfg, seeds=3,
                width=128, height=96)[0]
    ref = _diffusers(edit_dir)
    theirs = ref(photo, INSTRUCTION, negative_prompt=" " if cfg > 1 else None, true_cfg_scale=cfg, width=128,
                 height=96, num_inference_steps=2, generator=torch.Generator().manual_seed(3)).images[0]
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert a.shape == b.shape == (96, 128, 3) and a.std() > 1
    assert np.abs(a - b).mean() <= 0.05  # measured 0 to 1.6e-5 of 255 (float order of ops); the bound is 2


def test_several_images_follow_edit_plus(edit_dir, pipe, photo):
    second = photo.transpose(Image.FLIP_LEFT_RIGHT).resize((60, 60))
    ours = pipe([photo, second], INSTRUCTION, negative_prompt=" ", steps=2, cfg=4.0, seeds=5, width=64, height=64)[0]
    ref = _diffusers(edit_dir, "QwenImageEditPlusPipeline")
    theirs = ref([photo, second], INSTRUCTION, negative_prompt=" ", true_cfg_scale=4.0, width=64, height=64,
                 num_inference_steps=2, generator=torch.Generator().manual_seed(5)).images[0]
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert a.shape == b.shape == (64, 64, 3) and a.std() > 1
    assert np.abs(a - b).mean() <= 0.05


def test_zero_cond_t_model_matches_diffusers(tmp_path, photo):
    from qimage.model_dir import init_model_dir

    d = init_model_dir(tmp_path / "zc", "tiny-edit", seed=1, zero_cond_t=True)
    assert json.loads((d / "transformer" / "config.json").read_text())["zero_cond_t"] is True
    ours = EditPipeline.load(d, device="cpu")(photo, INSTRUCTION, steps=2, cfg=1.0, seeds=2, width=64, height=64)[0]
    theirs = _diffusers(d)(photo, INSTRUCTION, num_inference_steps=2, width=64, height=64,
                           generator=torch.Generator().manual_seed(2)).images[0]
    assert np.abs(np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)).mean() <= 0.05


def test_text_to_image_model_is_not_an_edit_model(tiny_model_dir):
    with pytest.raises(UserError, match="is not an edit model .*QwenImagePipeline"):
        check_edit_model(tiny_model_dir)
