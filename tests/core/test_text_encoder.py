"""The text path: the toy tokenizer keeps diffusers' 34-token drop exact; encodings equal the reference pipeline's."""
import pytest
import torch
from diffusers import QwenImagePipeline
from transformers import AutoTokenizer

from qimage.text_encoder import PROMPT_TEMPLATE, TEMPLATE_DROP, encode_prompts
from qimage.tokenizer import build_byte_tokenizer

PROMPTS = ["a cat", 'On a dark blue background, displaying yellow text "QWEN 图像".', "一只猫"]


def test_template_prefix_is_exactly_the_dropped_tokens():
    tok = build_byte_tokenizer()
    ids = tok(PROMPT_TEMPLATE.format('"ABC"'))["input_ids"]
    system = PROMPT_TEMPLATE.split("{}")[0]
    assert tok.decode(ids[:TEMPLATE_DROP]) == system
    assert tok.decode(ids[TEMPLATE_DROP:]).startswith('"ABC"<|im_end|>')


def test_quoted_text_is_one_token_per_byte_and_round_trips():
    tok = build_byte_tokenizer()
    for text in ["QWEN", "HELLO WORLD", "通义千问"]:
        pieces = tok.convert_ids_to_tokens(tok(f'"{text}"')["input_ids"])
        assert len(pieces) == len(text.encode()) + 2  # quotes around, one token per UTF-8 byte inside
    assert tok.decode(tok(PROMPTS[1])["input_ids"]) == PROMPTS[1]


def test_saved_tokenizer_reloads_identically(tmp_path):
    tok = build_byte_tokenizer()
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for p in PROMPTS:
        text = PROMPT_TEMPLATE.format(p)
        assert again(text)["input_ids"] == tok(text)["input_ids"]


def test_encoding_matches_the_reference_pipeline(tiny_model_dir):
    pipe = QwenImagePipeline.from_pretrained(tiny_model_dir)
    ref_embeds, ref_mask = pipe.encode_prompt(PROMPTS, device=torch.device("cpu"))
    embeds, mask = encode_prompts(pipe.text_encoder, pipe.tokenizer, PROMPTS, "cpu")
    assert embeds.shape == ref_embeds.shape and embeds.abs().max() > 0
    assert torch.equal(embeds, ref_embeds)
    assert torch.equal(mask, ref_mask)
    lengths = mask.sum(1).tolist()
    assert lengths[0] == len(tok_ids("a cat")) - TEMPLATE_DROP


def tok_ids(prompt):
    return build_byte_tokenizer()(PROMPT_TEMPLATE.format(prompt))["input_ids"]


@pytest.mark.parametrize("limit", [4, 512])
def test_max_sequence_length_truncates(tiny_model_dir, limit):
    pipe = QwenImagePipeline.from_pretrained(tiny_model_dir)
    embeds, mask = encode_prompts(pipe.text_encoder, pipe.tokenizer, PROMPTS, "cpu", max_sequence_length=limit)
    assert embeds.shape[1] == min(limit, max(len(tok_ids(p)) for p in PROMPTS) - TEMPLATE_DROP)


def test_every_palette_colour_is_one_token_in_new_and_shipped_tokenizers():
    from transformers import AutoTokenizer

    from qimage.model_dir import SHIPPED_TOY
    from qimage.synth import colors

    # the shipped toy carries its own tokenizer files: a colour added to the palette later would be split there
    for tok in (build_byte_tokenizer(), AutoTokenizer.from_pretrained(SHIPPED_TOY / "tokenizer")):
        for c in colors.PALETTE:
            assert tok.convert_ids_to_tokens(tok(f"a {c.name} star")["input_ids"])[1] == " " + c.name


def test_quoted_letters_sit_at_the_same_positions_whatever_the_colours():
    from qimage.tokenizer import COLOR_NAMES

    tok = build_byte_tokenizer()
    layouts = set()
    for bg in COLOR_NAMES:
        for fg in ("black", "navy blue", "off-white"):
            prompt = f'On a {bg} background, displaying {fg} text "WXYZ".'
            ids = tok(PROMPT_TEMPLATE.format(prompt))["input_ids"][TEMPLATE_DROP:]
            pieces = tok.convert_ids_to_tokens(ids)
            layouts.add(tuple(i for i, p in enumerate(pieces) if p in "WXYZ"))
            assert tok.decode(tok(prompt)["input_ids"]) == prompt  # lossless
    assert layouts == {(9, 10, 11, 12)}


def test_ngram_encoder_features_hold_each_token_and_the_three_before_it():
    from transformers import Qwen2_5_VLForConditionalGeneration

    from qimage.text_encoder import make_ngram_encoder, tiny_text_encoder_config

    tok = build_byte_tokenizer()
    model = Qwen2_5_VLForConditionalGeneration(tiny_text_encoder_config(hidden_size=128, layers=1, heads=4)).eval()
    make_ngram_encoder(model, seed=3)
    prompt = 'On a navy blue background, displaying yellow text "MILK".'
    embeds, _ = encode_prompts(model, tok, [prompt], "cpu")
    full = tok(PROMPT_TEMPLATE.format(prompt))["input_ids"]
    ids = full[TEMPLATE_DROP:]
    table = torch.nn.functional.normalize(model.model.language_model.embed_tokens.weight[:, :32], dim=1)
    slots = torch.nn.functional.normalize(embeds[0].reshape(len(ids), 4, 32), dim=-1)
    for i in range(len(ids)):
        for back in range(4):
            token = full[TEMPLATE_DROP + i - back]
            sims = slots[i, back] @ table.T
            assert sims.argmax().item() == token and sims[token] > 0.99, (i, back)
    # the letters of the quoted word: the quote mark sits k+1 places back from letter k, so each knows its index
    quote = tok.convert_tokens_to_ids('Ġ"')
    k0 = tok.convert_ids_to_tokens(ids).index("M")
    for k in range(3):
        assert (slots[k0 + k, k + 1] @ table[quote]) > 0.99


def test_scenes_captions_are_whole_word_tokens():
    """Every English scenes caption tokenises into words (counts, colours, shapes, relations, template words), so
    the n-gram encoder sees a shape noun with its colour and count; the words captions are untouched by them."""
    from qimage.synth import colors, scenes
    from qimage.synth.runner import RunConfig, context
    from qimage.synth.sample import rng_for
    from qimage.tokenizer import SCENE_WORDS

    tok = build_byte_tokenizer()
    words = {*SCENE_WORDS, *(" " + c.name for c in colors.PALETTE), "A", " a", " an", " and", " background", ".", ","}
    ctx = context(RunConfig(kind="scenes", n=300, out=".", width=128, height=64, seed=0))
    tasks = set()
    for i in range(300):
        s = scenes.make(ctx, rng_for(0, i), "en")
        tasks.add(s.meta["task"])
        pieces = [tok.decode([t]) for t in tok(s.caption)["input_ids"]]
        assert set(pieces) <= words, (s.caption, pieces)
        assert "".join(pieces) == s.caption
    assert tasks == set(scenes.TASKS)
    words_caption = 'On a white background, displaying black text "MILK".'
    assert not set(SCENE_WORDS) & {tok.decode([t]) for t in tok(words_caption)["input_ids"]}
