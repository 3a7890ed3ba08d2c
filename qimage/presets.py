"""Named model sizes. A preset is the config of every component of a model directory.

``tiny``: the smallest model that exercises every code path (tests, CI). ``toy``: the size the shipped toy trains at on
a CPU (a 3.7M-parameter denoiser as in the probes of docs/toy.md, a 4x VAE with 8 latent channels, a one-layer
text encoder built as a fixed n-gram encoder).
``tiny-edit``, ``toy-edit``: the same sizes as edit models (QwenImageEditPipeline: a processor/ folder, the edit
tokenizer; tiny-edit has an 8x VAE, since diffusers' rule edits ~1024**2-pixel inputs).
``qwen-image``: the released model's transformer and VAE sizes, for reference and for meta-device checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

SCHEDULER_CONFIG = {
    # Qwen-Image's released scheduler: dynamic exponential shift, mu linear in the image token count.
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "invert_sigmas": False,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "stochastic_sampling": False,
    "time_shift_type": "exponential",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}


@dataclass(frozen=True)
class Preset:
    name: str
    transformer: dict
    vae: dict
    text_encoder: dict = field(default_factory=dict)  # kwargs of qimage.text_encoder.tiny_text_encoder_config
    default_size: tuple[int, int] = (64, 64)  # (W, H)
    # "random": PyTorch's init; "ngram": qimage.text_encoder.make_ngram_encoder (each token's feature holds itself
    # and the three tokens before it, so a quoted letter's feature says which letter of the word it is)
    text_encoder_design: str = "random"
    # an edit model (QwenImageEditPipeline layout: the edit tokenizer and a processor/ folder)
    edit: bool = False
    # qimage.json of a fresh directory: its own edit input area (None: diffusers' 1024**2 rule)
    condition_area: int | None = None


def _vae(base_dim: int, z_dim: int, downsamples: int = 2) -> dict:
    # 4x spatial compression (two downsamples), the probes' choice: small images keep enough latent tokens.
    # tiny-edit takes 8x (three), as the real VAE: diffusers' edit rule resizes every input to ~1024**2 pixels.
    return dict(
        base_dim=base_dim, z_dim=z_dim, dim_mult=[1, 2, 4, 4][: downsamples + 1], num_res_blocks=1, attn_scales=[],
        temperal_downsample=[False, True, True][:downsamples], dropout=0.0,
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )


PRESETS = {
    "tiny": Preset(
        name="tiny",
        transformer=dict(
            patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 6, 6),
        ),
        vae=_vae(8, 4),
        text_encoder=dict(hidden_size=32, layers=1, heads=2),
        default_size=(64, 64),
    ),
    "toy": Preset(
        name="toy",
        transformer=dict(
            patch_size=2, in_channels=32, out_channels=8, num_layers=6, attention_head_dim=32,
            num_attention_heads=4, joint_attention_dim=128, axes_dims_rope=(8, 12, 12),
        ),
        vae=_vae(16, 8),
        text_encoder=dict(hidden_size=128, layers=1, heads=4),
        text_encoder_design="ngram",
        default_size=(128, 64),
    ),
}
PRESETS["tiny-edit"] = replace(PRESETS["tiny"], name="tiny-edit", vae=_vae(8, 4, downsamples=3), edit=True)
# The toy's sizes, so that an edit toy starts from the text-to-image toy's weights (qimage train edit, init_from);
# it edits 128x64 inputs at their own size.
PRESETS["toy-edit"] = replace(PRESETS["toy"], name="toy-edit", edit=True, condition_area=128 * 64)

QWEN_IMAGE_TRANSFORMER = dict(
    patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
    num_attention_heads=24, joint_attention_dim=3584, axes_dims_rope=(16, 56, 56),
)
