"""clip_similarity (stage 3): image-caption mismatch, by a local CLIP / SigLIP / Chinese-CLIP dual encoder.

Score: cosine similarity of the image and caption embeddings. As in Qwen-Image it applies to the raw-caption
split only: samples whose sidecar JSON says `"caption_source"` is something not in `sources` (recaptioned,
fused), and samples without a caption, score NaN and pass. Skipped with a warning when `model` is null.
"""
from qimage.datapipe.filters import register
from qimage.datapipe.filters._model import ModelFilter


@register
class ClipSimilarity(ModelFilter):
    name = "clip_similarity"
    stage = 3
    model_kind = "similarity"
    what = "image-caption cosine"
    params = {"model": None, "sources": ["raw"], "min": 0.2, "max": None}

    def measure(self, sample) -> float:
        source = str(sample.meta.get("caption_source", "raw"))
        if not sample.caption or source not in self.cfg["sources"]:
            return float("nan")
        return self._model(sample.work, sample.caption)
