"""The toy shipped inside the package (qimage/toy, docs/toy.md): a complete, small model directory that both qimage
and diffusers load, built on the n-gram text encoder and the caption tokenizer its recipe trains with."""
import torch

from qimage.model_dir import SHIPPED_TOY, check_model_dir


def test_is_a_small_safetensors_model_directory():
    check_model_dir(SHIPPED_TOY)
    files = [p for p in SHIPPED_TOY.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    assert {p.parent.name for p in files if p.suffix == ".safetensors"} >= {"transformer", "vae", "text_encoder"}


def test_qimage_and_diffusers_give_the_same_image():
    import numpy as np
    from diffusers import QwenImagePipeline

    from qimage.pipeline import Pipeline

    prompt = 'On a white background, displaying black text "MILK".'
    ours = Pipeline.load(SHIPPED_TOY)([prompt], width=128, height=64, steps=4, cfg=4.0, seeds=3)[0]
    ref = QwenImagePipeline.from_pretrained(SHIPPED_TOY)
    theirs = ref(prompt=prompt, negative_prompt=" ", width=128, height=64, num_inference_steps=4, true_cfg_scale=4.0,
                 generator=torch.Generator().manual_seed(3)).images[0]
    diff = np.abs(np.asarray(ours, np.float32) - np.asarray(theirs, np.float32)).mean()
    assert diff <= 2.0, diff


def test_text_encoder_is_the_ngram_construction():
    from qimage.model_dir import load_components
    from qimage.text_encoder import encode_prompts

    c = load_components(SHIPPED_TOY)
    tok, te = c["tokenizer"], c["text_encoder"]
    embeds, _ = encode_prompts(te, tok, ['On a navy blue background, displaying yellow text "MOON".'], "cpu")
    pieces = tok.convert_ids_to_tokens(tok('On a navy blue background, displaying yellow text "MOON".')["input_ids"])
    assert pieces.index("M") == 9  # the letters at fixed positions: colour names are single tokens
    slots = torch.nn.functional.normalize(embeds[0].reshape(embeds.shape[1], 4, -1), dim=-1)
    assert (slots[10, 1] @ slots[9, 0]) > 0.99  # letter 1 holds letter 0 one slot back


def test_tokenizer_is_the_one_the_recipe_inits():
    """The shipped toy was trained with today's toy tokenizer (scenes words and colours as tokens): a model directory
    from `qimage init --preset toy` and the shipped one tokenise every caption the same."""
    from transformers import AutoTokenizer

    from qimage.tokenizer import build_byte_tokenizer

    shipped = AutoTokenizer.from_pretrained(SHIPPED_TOY / "tokenizer")
    assert shipped.get_vocab() == build_byte_tokenizer().get_vocab()
    pieces = shipped.convert_ids_to_tokens(shipped("A photo of two red circles.")["input_ids"])
    assert len(pieces) == 5
