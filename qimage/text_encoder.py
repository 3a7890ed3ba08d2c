"""Qwen-Image's text conditioning: a frozen Qwen2.5-VL read through a chat template.

    tokens = tokenizer(TEMPLATE.format(prompt))            the system line asks for a detailed image description
    h      = text_encoder(tokens).hidden_states[-1]         last layer, (B, T, hidden)
    embeds = h[real tokens][TEMPLATE_DROP:]                drop the system part (34 tokens as Qwen's tokenizer counts)
    embeds, mask = right-pad to the longest in the batch, mask 1 for real tokens, 0 for padding

exactly as diffusers' QwenImagePipeline does, so the same text encoder gives the same embeddings in both. For the toy,
the text encoder is a tiny Qwen2.5-VL created locally (``tiny_text_encoder_config``) with the byte-level tokenizer of
``qimage.tokenizer``; for real use, the ``text_encoder/`` and ``tokenizer/`` folders of a Qwen-Image directory.
"""
from __future__ import annotations

import torch

PROMPT_TEMPLATE = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
    "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)
TEMPLATE_DROP = 34
# Qwen-Image-Edit's template: the condition image enters as vision tokens before the instruction; the first 64 tokens
# (its system part, as Qwen's tokenizer counts it) are dropped. Edit-Plus uses the same system part with one
# "Picture k: <vision>" block per input image in the user turn.
EDIT_TEMPLATE = (
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, objects, "
    "background), then explain how the user's text instruction should alter or modify the image. Generate a new image "
    "that meets the user's requirements while maintaining consistency with the original input where appropriate."
    "<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{}<|im_end|>\n<|im_start|>assistant\n"
)
EDIT_PLUS_TEMPLATE = EDIT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "")
EDIT_PLUS_PICTURE = "Picture {}: <|vision_start|><|image_pad|><|vision_end|>"
EDIT_DROP = 64
TOKENIZER_MAX_LENGTH = 1024
DEFAULT_MAX_SEQUENCE_LENGTH = 512


@torch.no_grad()
def encode_prompts(
    text_encoder,
    tokenizer,
    prompts: list[str],
    device: torch.device | str | None = None,
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt embeddings (B, L, hidden) in the encoder's dtype and a long mask (B, L), as the reference pipeline."""
    if isinstance(prompts, str):
        prompts = [prompts]
    device = device or next(text_encoder.parameters()).device
    tokens = tokenizer(
        [PROMPT_TEMPLATE.format(p) for p in prompts],
        max_length=TOKENIZER_MAX_LENGTH + TEMPLATE_DROP,
        padding=True,
        truncation=True,
        return_tensors="pt",
    ).to(device)
    out = text_encoder(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, output_hidden_states=True)
    embeds, mask = drop_and_pad(out.hidden_states[-1], tokens.attention_mask, TEMPLATE_DROP)
    return embeds[:, :max_sequence_length], mask[:, :max_sequence_length]


def drop_and_pad(hidden: torch.Tensor, attention_mask: torch.Tensor, drop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's real tokens minus the first ``drop``, right-padded with zeros; mask 1 on real tokens."""
    from torch.nn.utils.rnn import pad_sequence

    per_prompt = [h[m.bool()][drop:] for h, m in zip(hidden, attention_mask)]
    embeds = pad_sequence(per_prompt, batch_first=True)
    ones = [torch.ones(e.shape[0], dtype=torch.long, device=hidden.device) for e in per_prompt]
    return embeds, pad_sequence(ones, batch_first=True)


@torch.no_grad()
def encode_edit_prompts(text_encoder, processor, prompts: list[str], images: list, device=None, plus: bool = False):
    """Qwen-Image-Edit's conditioning: each prompt read by Qwen2.5-VL together with the condition image(s).

        text   = EDIT_TEMPLATE.format(prompt)                                   (Edit: one image)
               | EDIT_PLUS_TEMPLATE.format("Picture 1: <vision>..." + prompt)     (Edit-Plus: one block per image)
        inputs = processor(text, images)      <|image_pad|> expands to one token per 2x2 group of 14 px patches
        embeds = text_encoder(inputs).hidden_states[-1][real tokens][EDIT_DROP:]

    Each prompt is encoded on its own with the same images (the processor pairs one image list with one text), then
    the rows are right-padded: the same embeddings as diffusers' pipelines give one prompt at a time.
    """
    device = device or next(text_encoder.parameters()).device
    if plus:
        pictures = "".join(EDIT_PLUS_PICTURE.format(k + 1) for k in range(len(images)))
        texts = [EDIT_PLUS_TEMPLATE.format(pictures + p) for p in prompts]
    else:
        if len(images) != 1:
            raise ValueError("the Edit template takes one image; use plus=True for several")
        texts = [EDIT_TEMPLATE.format(p) for p in prompts]
    rows, masks = [], []
    for text in texts:
        inputs = processor(text=[text], images=list(images), padding=True, return_tensors="pt").to(device)
        out = text_encoder(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
            pixel_values=inputs["pixel_values"].to(text_encoder.dtype), image_grid_thw=inputs["image_grid_thw"],
            output_hidden_states=True,
        )
        e, m = drop_and_pad(out.hidden_states[-1], inputs["attention_mask"], EDIT_DROP)
        rows.append(e[0])
        masks.append(m[0])
    from torch.nn.utils.rnn import pad_sequence

    return pad_sequence(rows, batch_first=True), pad_sequence(masks, batch_first=True)


def tiny_text_encoder_config(hidden_size: int = 64, layers: int = 1, heads: int = 2, vocab_size: int | None = None):
    """A Qwen2.5-VL config small enough for a CPU toy: same architecture (so diffusers loads it), tiny sizes.

    The vision tower is kept (the class needs it, and editing will feed condition images through it) at the
    smallest size that runs. Token ids for the vision markers point at the toy tokenizer's special tokens.
    """
    from transformers import Qwen2_5_VLConfig

    from qimage.tokenizer import build_byte_tokenizer

    tok = build_byte_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<|endoftext|>", "<|im_end|>")}
    head_dim = hidden_size // heads
    if head_dim % 16:
        raise ValueError("hidden_size / heads must be a multiple of 16 for Qwen2.5-VL's 3-axis rotary split")
    q = head_dim // 8  # mrope_section splits the head_dim/2 frequencies 2:3:3, like the real model's (16, 24, 24)
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab_size or len(tok),
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=2048,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [q, 3 * q // 2, 3 * q // 2]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden_size,
            patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[0],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


@torch.no_grad()
def make_ngram_encoder(model, offsets: tuple[int, ...] = (1, 2, 3), seed: int = 0, sharpness: float = 40.0):
    """Sets a one-layer Qwen2.5-VL text model's weights so that it is a fixed n-gram encoder:

        h_i = [ e(t_i) | e(t_{i-1}) | e(t_{i-2}) | e(t_{i-3}) ]        (one slot of hidden/(1+len(offsets)) each)

    e(t) is a random token embedding confined to the first slot (norm sqrt(hidden), so the input RMSNorm leaves it
    as is). Attention head m copies the token `offsets[m]` places back into slot m+1: its query and key are
    constant (zero weights, bias only), q = u and k = R(offsets[m]) u with RoPE's own rotation, so after RoPE the
    score of key j for query i is sharpness * mean_f cos(theta_f (i - j - offsets[m])), one sharp peak at
    j = i - offsets[m] (theta_f >= 0.075 with Qwen's base, no alias within the first ~80 tokens); the value is the
    first slot. The MLP is zero. Heads beyond len(offsets) are off.

    Why: a frozen random encoder gives every letter a feature that says which letter it is but not which one of the
    word it is (positions live only in RoPE), and the probes found a small denoiser binds letters to places in
    minutes when the conditioning says the letter's index. Here letter k of a quoted word carries the quote mark
    k+1 places back (and its neighbours, and for the first letter the text colour), so its index is in its feature.
    It stays a Qwen2.5-VL in form: diffusers loads it, and a real Qwen-Image directory simply replaces it.
    """
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import rotate_half

    lm = model.model.language_model if hasattr(model, "model") else model
    cfg = lm.config
    H, heads = cfg.hidden_size, cfg.num_attention_heads
    d = H // heads
    n_slots = 1 + len(offsets)
    if len(lm.layers) != 1 or cfg.num_key_value_heads != heads or len(offsets) > heads or H % n_slots or d < H // n_slots:
        raise ValueError("make_ngram_encoder needs one layer, no grouped KV, and hidden divisible into the slots")
    s = H // n_slots
    g = torch.Generator().manual_seed(seed)
    emb = torch.zeros_like(lm.embed_tokens.weight)
    e = torch.randn(emb.shape[0], s, generator=g)
    emb[:, :s] = e / e.norm(dim=1, keepdim=True) * H ** 0.5
    lm.embed_tokens.weight.copy_(emb)
    layer = lm.layers[0]
    att = layer.self_attn
    for lin in (att.q_proj, att.k_proj, att.v_proj, att.o_proj, layer.mlp.gate_proj, layer.mlp.up_proj,
                layer.mlp.down_proj):
        lin.weight.zero_()
        if lin.bias is not None:
            lin.bias.zero_()
    for norm in (layer.input_layernorm, layer.post_attention_layernorm, lm.norm):
        norm.weight.fill_(1.0)
    inv_freq = lm.rotary_emb.inv_freq.float().cpu()  # (d/2,): text positions are equal on all three mrope axes
    u = torch.full((d,), (sharpness * d ** 0.5 / (d // 2)) ** 0.5)  # q.k / sqrt(d) = sharpness * mean cos
    for m, off in enumerate(offsets):
        ang = off * inv_freq
        cos, sin = torch.cat([ang.cos(), ang.cos()]), torch.cat([ang.sin(), ang.sin()])
        att.q_proj.bias[m * d:(m + 1) * d] = u
        att.k_proj.bias[m * d:(m + 1) * d] = u * cos + rotate_half(u) * sin  # the key as RoPE rotates it by `off`
        att.v_proj.weight[m * d:m * d + s, :s] = torch.eye(s)
        att.o_proj.weight[(m + 1) * s:(m + 2) * s, m * d:m * d + s] = torch.eye(s)
    return model
