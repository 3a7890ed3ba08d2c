"""The Qwen-Image MMDiT: a dual-stream diffusion transformer with joint attention and MSRoPE.

Drop-in for diffusers' ``QwenImageTransformer2DModel``: the same config keys, state-dict names and forward arguments, so
a diffusers checkpoint loads strictly and a qimage checkpoint loads in diffusers. Written to be read in one sitting.

For image tokens x (packed 2x2 latent patches), text tokens c and the timestep embedding e(sigma), each block does

    (shift1, scale1, gate1, shift2, scale2, gate2) = Linear(SiLU(e))          separately for image and text
    x' = LN(x) * (1 + scale1) + shift1            c' likewise with the text's own parameters
    q, k, v = RoPE(RMSNorm(W_q x')), ...          per stream, then joint attention over [c', x'] with a key mask
    x = x + gate1 * W_o attn_x;   x = x + gate2 * MLP(LN(x) * (1 + scale2) + shift2)   (text likewise)

and the output is Linear(LN(x) * (1 + scale) + shift) of the image tokens only.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.loaders.peft import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin

from qimage.models.rope import MSRoPE, apply_rope_complex, as_complex

DIFFUSERS_CLASS = "QwenImageTransformer2DModel"


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x * (1 + scale) + shift, with (B, D) or per-token (B, L, D) parameters."""
    if shift.dim() == 2:
        shift, scale = shift[:, None], scale[:, None]
    return torch.addcmul(shift, x, 1 + scale)


def timestep_embedding(sigma: torch.Tensor, dim: int = 256, scale: float = 1000.0, max_period: float = 10000.0):
    """Sinusoidal embedding [cos(s*t*w_k), sin(s*t*w_k)], w_k = max_period^(-k/(dim/2)), computed in float32."""
    half = dim // 2
    w = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=sigma.device) / half)
    args = (sigma.float()[:, None] * w[None]) * scale  # this order rounds like diffusers: args reach ~1000 rad
    return torch.cat([args.cos(), args.sin()], dim=-1)


class RMSNorm(nn.Module):
    """x / rms(x) * weight, over the last dim; the statistics in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).type_as(x)


class TimestepEmbedder(nn.Module):
    """sigma -> sinusoid(256) -> Linear -> SiLU -> Linear. (Module names follow diffusers' state dict.)"""

    def __init__(self, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(256, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, sigma: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(timestep_embedding(sigma).to(dtype))))


class TimeTextEmbed(nn.Module):
    """Qwen-Image has no pooled text vector: the conditioning vector is the timestep embedding alone."""

    def __init__(self, dim: int, use_additional_t_cond: bool = False):
        super().__init__()
        self.timestep_embedder = TimestepEmbedder(dim)
        self.addition_t_embedding = nn.Embedding(2, dim) if use_additional_t_cond else None

    def forward(self, sigma, dtype, additional_t_cond=None):
        emb = self.timestep_embedder(sigma, dtype)
        if self.addition_t_embedding is not None:
            if additional_t_cond is None:
                raise ValueError("this model has use_additional_t_cond=True: pass additional_t_cond")
            emb = emb + self.addition_t_embedding(additional_t_cond).to(dtype)
        return emb


class GELUProj(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return F.gelu(self.proj(x), approximate="tanh")


class MLP(nn.Module):
    """Linear(D, 4D) -> GELU(tanh) -> Linear(4D, D); ``net`` indices match diffusers' FeedForward (1 is dropout)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.ModuleList([GELUProj(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class JointAttention(nn.Module):
    """Joint attention of the two streams: per-stream q/k/v, QK-RMSNorm and output projections, one softmax."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner) for _ in range(3))
        self.add_q_proj, self.add_k_proj, self.add_v_proj = (nn.Linear(dim, inner) for _ in range(3))
        self.norm_q, self.norm_k = RMSNorm(head_dim, eps), RMSNorm(head_dim, eps)
        self.norm_added_q, self.norm_added_k = RMSNorm(head_dim, eps), RMSNorm(head_dim, eps)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])
        self.to_add_out = nn.Linear(inner, dim)

    @staticmethod
    def _qkv(x, q: nn.Linear, k: nn.Linear, v: nn.Linear, head_dim: int):
        # One matmul for q, k and v instead of three: the weights are concatenated on the fly (cheap, autograd-safe)
        # so the state dict keeps diffusers' separate names.
        if not all(type(m) is nn.Linear for m in (q, k, v)):  # adapters (peft LoRA) wrap the layers: call them
            return tuple(m(x).unflatten(-1, (-1, head_dim)) for m in (q, k, v))
        w = torch.cat([q.weight, k.weight, v.weight])
        b = torch.cat([q.bias, k.bias, v.bias])
        return F.linear(x, w, b).unflatten(-1, (3, -1, head_dim)).unbind(-3)

    def forward(self, img, txt, rope: torch.Tensor, mask: torch.Tensor | None, need_txt=True):
        """img (B, Li, D), txt (B, Lt, D); rope: complex rotation table for [txt, img] (``MMDiT._rope``);
        mask (B, Lt+Li) bool or None. Returns the image output and the text output (None unless ``need_txt``:
        the last block's text output feeds nothing, so its queries skip norm, RoPE and attention)."""
        lt = txt.shape[1]
        iq, ik, iv = self._qkv(img, self.to_q, self.to_k, self.to_v, self.head_dim)
        tq, tk, tv = self._qkv(txt, self.add_q_proj, self.add_k_proj, self.add_v_proj, self.head_dim)
        # Joint (B, H, L, head_dim) tensors: concatenating in this layout hands SDPA contiguous inputs.
        k = apply_rope_complex(_bhld_cat(self.norm_added_k(tk), self.norm_k(ik)), rope)
        v = _bhld_cat(tv, iv)
        if need_txt:
            q = apply_rope_complex(_bhld_cat(self.norm_added_q(tq), self.norm_q(iq)), rope)
        else:
            q = apply_rope_complex(self.norm_q(iq).transpose(1, 2), rope[..., lt:, :])
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v.to(q.dtype), attn_mask=attn_mask)
        out = out.transpose(1, 2).flatten(2).to(img.dtype)
        if not need_txt:
            return self.to_out[0](out), None
        return self.to_out[0](out[:, lt:]), self.to_add_out(out[:, :lt])


def _bhld_cat(txt: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """(B, L, H, D) text and image parts -> one contiguous (B, H, Lt + Li, D) tensor."""
    return torch.cat([txt.transpose(1, 2), img.transpose(1, 2)], dim=2)


class MMDiTBlock(nn.Module):
    """One dual-stream block (diffusers: QwenImageTransformerBlock)."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.img_mod = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.txt_mod = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.attn = JointAttention(dim, heads, head_dim, eps)
        self.img_mlp, self.txt_mlp = MLP(dim), MLP(dim)
        self.eps = eps

    def _ln(self, x):
        return F.layer_norm(x, (x.shape[-1],), eps=self.eps)

    def forward(self, img, txt, temb, rope, mask, modulate_index=None, need_txt=True):
        img_mod = self.img_mod(temb)  # (B, 6D), or (2B, 6D) with zero_cond_t
        if modulate_index is not None:
            # Edit models with zero_cond_t: target tokens use the timestep's modulation, condition tokens that of t=0.
            t_mod, zero_mod = img_mod.chunk(2)
            img_mod = torch.where(modulate_index[..., None] == 0, t_mod[:, None], zero_mod[:, None])
            temb = temb.chunk(2)[0]
        ish1, isc1, ig1, ish2, isc2, ig2 = img_mod.chunk(6, dim=-1)
        tsh1, tsc1, tg1, tsh2, tsc2, tg2 = self.txt_mod(temb).chunk(6, dim=-1)
        if ig1.dim() == 2:
            ig1, ig2 = ig1[:, None], ig2[:, None]
        tg1, tg2 = tg1[:, None], tg2[:, None]

        img_attn, txt_attn = self.attn(
            modulate(self._ln(img), ish1, isc1), modulate(self._ln(txt), tsh1, tsc1), rope, mask, need_txt
        )
        img = torch.addcmul(img, ig1, img_attn)
        img = torch.addcmul(img, ig2, self.img_mlp(modulate(self._ln(img), ish2, isc2)))
        if need_txt:
            txt = torch.addcmul(txt, tg1, txt_attn)
            txt = torch.addcmul(txt, tg2, self.txt_mlp(modulate(self._ln(txt), tsh2, tsc2)))
        if img.dtype == torch.float16:  # fp16 activations can overflow in the residual stream
            img, txt = img.clip(-65504, 65504), txt.clip(-65504, 65504)
        return img, txt


class AdaNormOut(nn.Module):
    """Final adaLN: LN(x) * (1 + scale) + shift with (scale, shift) = Linear(SiLU(e)) (note: scale first)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)
        self.eps = eps

    def forward(self, x, temb):
        scale, shift = self.linear(F.silu(temb)).chunk(2, dim=-1)
        return modulate(F.layer_norm(x, (x.shape[-1],), eps=self.eps), shift, scale)


class MMDiT(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """Qwen-Image's MMDiT. ``MMDiT.from_pretrained(dir)`` reads diffusers' QwenImageTransformer2DModel folders."""

    _supports_gradient_checkpointing = True
    _no_split_modules = ["MMDiTBlock"]
    _skip_layerwise_casting_patterns = ["norm"]

    @register_to_config
    def __init__(
        self,
        patch_size: int = 2,
        in_channels: int = 64,
        out_channels: int | None = 16,
        num_layers: int = 60,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 3584,
        guidance_embeds: bool = False,
        axes_dims_rope: Sequence[int] = (16, 56, 56),
        zero_cond_t: bool = False,
        use_additional_t_cond: bool = False,
        use_layer3d_rope: bool = False,
    ):
        super().__init__()
        if guidance_embeds or use_layer3d_rope:
            raise ValueError("qimage's MMDiT does not implement guidance_embeds or use_layer3d_rope (Qwen-Image-Layered)")
        if sum(axes_dims_rope) != attention_head_dim:
            raise ValueError(f"sum(axes_dims_rope)={sum(axes_dims_rope)} must equal attention_head_dim={attention_head_dim}")
        dim = num_attention_heads * attention_head_dim
        self.inner_dim = dim
        self.out_channels = out_channels or in_channels
        self.rope = MSRoPE(axes_dims_rope)
        self.time_text_embed = TimeTextEmbed(dim, use_additional_t_cond)
        self.txt_norm = RMSNorm(joint_attention_dim)
        self.img_in = nn.Linear(in_channels, dim)
        self.txt_in = nn.Linear(joint_attention_dim, dim)
        self.transformer_blocks = nn.ModuleList(
            MMDiTBlock(dim, num_attention_heads, attention_head_dim) for _ in range(num_layers)
        )
        self.norm_out = AdaNormOut(dim)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * self.out_channels)
        self.gradient_checkpointing = False

    def initialize_weights(self, scheme: str = "adaln-zero") -> "MMDiT":
        """Initialisation, in one place.

        ``default``: PyTorch's Linear init (what a fresh diffusers model has).
        ``adaln-zero`` (DiT): Xavier-uniform Linears, and every modulation output, ``norm_out`` and ``proj_out`` zero,
        so each block starts as the identity and the model predicts 0: the stable start for training from scratch.
        """
        if scheme == "default":
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    m.reset_parameters()
            return self
        if scheme != "adaln-zero":
            raise ValueError(f"unknown init scheme {scheme!r}")
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        emb = self.time_text_embed.timestep_embedder
        nn.init.normal_(emb.linear_1.weight, std=0.02)
        nn.init.normal_(emb.linear_2.weight, std=0.02)
        zero = [b.img_mod[1] for b in self.transformer_blocks] + [b.txt_mod[1] for b in self.transformer_blocks]
        for m in zero + [self.norm_out.linear, self.proj_out]:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        return self

    def to_json_string(self) -> str:
        # Save under diffusers' class name so a qimage transformer/ folder is indistinguishable from diffusers' own.
        config = json.loads(super().to_json_string())
        config["_class_name"] = DIFFUSERS_CLASS
        return json.dumps(config, indent=2, sort_keys=True) + "\n"

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_mask: torch.Tensor | None = None,
        timestep: torch.Tensor | None = None,
        img_shapes: list | None = None,
        guidance: torch.Tensor | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        controlnet_block_samples: list[torch.Tensor] | None = None,
        additional_t_cond: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        """Velocity for packed image tokens.

        hidden_states (B, L_img, in_channels): noisy target tokens, followed by clean condition-image tokens for edits.
        encoder_hidden_states (B, L_txt, joint_attention_dim) with a 1/0 mask (B, L_txt) or None.
        timestep (B,): sigma in [0, 1]. img_shapes: per sample, a list of (frames, h, w) token grids, target first.
        Unlike diffusers, samples may have different grids (with equal token counts), e.g. transposed aspect buckets.
        Returns (B, L_img, p*p*out_channels); for edits, slice off the target tokens.
        """
        if img_shapes is None:
            raise ValueError("img_shapes is required: a list per sample of (frames, h, w) token grids")
        per_sample = _normalise_shapes(img_shapes, hidden_states.shape[0])
        img = self.img_in(hidden_states)
        dtype = img.dtype
        txt = self.txt_in(self.txt_norm(encoder_hidden_states))
        sigma = timestep.to(dtype)

        modulate_index = None
        if self.config.zero_cond_t:
            sigma = torch.cat([sigma, sigma * 0])
            modulate_index = torch.tensor(
                [[0] * math.prod(s[0]) + [1] * sum(math.prod(x) for x in s[1:]) for s in per_sample], device=img.device
            )
        temb = self.time_text_embed(sigma, dtype, additional_t_cond)

        rope = self._rope(per_sample, txt.shape[1], img.device)
        mask = None
        if encoder_hidden_states_mask is not None and not bool(encoder_hidden_states_mask.all()):
            # Padded text keys get exactly zero attention weight, so a prompt's output does not depend on the
            # padding other prompts in its batch add (diffusers issue 12075). With no padding the mask is dropped,
            # which lets SDPA take its fused path.
            ones = torch.ones(img.shape[:2], dtype=torch.bool, device=img.device)
            mask = torch.cat([encoder_hidden_states_mask.bool(), ones], dim=1)

        last = len(self.transformer_blocks) - 1
        for i, block in enumerate(self.transformer_blocks):
            need_txt = i < last  # the final block's text stream would feed nothing
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                img, txt = self._gradient_checkpointing_func(block, img, txt, temb, rope, mask, modulate_index, need_txt)
            else:
                img, txt = block(img, txt, temb, rope, mask, modulate_index, need_txt)
            if controlnet_block_samples is not None:
                every = int(math.ceil(len(self.transformer_blocks) / len(controlnet_block_samples)))
                img = img + controlnet_block_samples[i // every]

        if self.config.zero_cond_t:
            temb = temb.chunk(2)[0]
        out = self.proj_out(self.norm_out(img, temb))
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)

    def _rope(self, per_sample: list[list[tuple]], text_len: int, device) -> torch.Tensor:
        """Complex rotation table (L, D/2), or (B, 1, L, D/2) when samples have different grids."""
        if all(s == per_sample[0] for s in per_sample):
            return as_complex(*self.rope(per_sample[0], text_len, device))
        return torch.stack([as_complex(*self.rope(s, text_len, device)) for s in per_sample])[:, None]


def _normalise_shapes(img_shapes, batch: int) -> list[list[tuple]]:
    """Per-sample lists of (frames, h, w), from diffusers' forms.

    ``[[(f,h,w), (f,h2,w2)], ...]``: per sample, target then condition images; ``[(f,h,w), ...]``: one image per
    sample; ``(f,h,w)``: one image for the whole batch. A single entry is broadcast over the batch.
    """
    def is_shape(v):
        return isinstance(v, (tuple, list)) and len(v) == 3 and all(isinstance(x, int) for x in v)

    if is_shape(img_shapes):
        img_shapes = [img_shapes]
    shapes = [[tuple(s)] if is_shape(s) else [tuple(int(x) for x in im) for im in s] for s in img_shapes]
    if len(shapes) == 1:
        shapes = shapes * batch
    if len(shapes) != batch:
        raise ValueError(f"img_shapes has {len(shapes)} entries for a batch of {batch}")
    return shapes
