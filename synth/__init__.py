"""qimage.synth: Qwen-Image's text-rendering synthesisers (pure, compositional, complex) and scenes."""
