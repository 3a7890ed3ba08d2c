"""Qwen-Image's networks. ``MMDiT`` is drop-in for diffusers' QwenImageTransformer2DModel."""
from qimage.models.mmdit import MMDiT
from qimage.models.rope import MSRoPE, apply_rope

__all__ = ["MMDiT", "MSRoPE", "apply_rope"]
