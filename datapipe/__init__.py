"""qimage.datapipe: Qwen-Image's seven-stage data cleaning as a Ray Data pipeline."""
