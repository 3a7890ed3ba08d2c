"""aesthetic (stage 5): poor composition or visual appeal, by a local aesthetic predictor.

Score: the model's output: the raw value of a one-output regression head (e.g. a 1-10 aesthetic score), or the
probability of the `labels` for a classifier with good/bad classes. Skipped with a warning when `model` is null.
"""
from qimage.datapipe.filters import register
from qimage.datapipe.filters._model import ClassifierFilter


@register
class Aesthetic(ClassifierFilter):
    name = "aesthetic"
    stage = 5
    what = "aesthetic score"
    params = {"model": None, "labels": ["good", "high", "aesthetic"], "min": 5.0, "max": None}
