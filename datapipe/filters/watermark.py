"""watermark (stage 5): images carrying visible watermarks, by a local image classifier.

Score: probability of the watermark labels (a classifier saved locally with labels such as clean/watermark).
Skipped with a warning when `model` is null: no weight-free watermark detector is reliable.
"""
from qimage.datapipe.filters import register
from qimage.datapipe.filters._model import ClassifierFilter


@register
class Watermark(ClassifierFilter):
    name = "watermark"
    stage = 5
    what = "watermark probability"
    params = {"model": None, "labels": ["watermark"], "min": None, "max": 0.5}
