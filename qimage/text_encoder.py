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
    hidden = out.hidden_states[-1]
    keep = tokens.attention_mask.bool()
    per_prompt = [h[m][TEMPLATE_DROP:] for h, m in zip(hidden, keep)]
    length = max(e.shape[0] for e in per_prompt)
    embeds = hidden.new_zeros(len(prompts), length, hidden.shape[-1])
    mask = torch.zeros(len(prompts), length, dtype=torch.long, device=hidden.device)
    for i, e in enumerate(per_prompt):
        embeds[i, : e.shape[0]] = e
        mask[i, : e.shape[0]] = 1
    return embeds[:, :max_sequence_length], mask[:, :max_sequence_length]


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
