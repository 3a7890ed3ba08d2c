"""qimage: Qwen-Image at toy scale.

Packages meet through two contracts (see docs/contracts.md):
1. a model is a directory in diffusers' QwenImagePipeline layout;
2. a sample is an image + caption (.txt) + JSON metadata; after cleaning, Parquet shards.
"""
__version__ = "0.1.0"
