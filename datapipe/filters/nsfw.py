"""nsfw (stage 1): pornographic or otherwise offensive images, by a local image classifier.

Score: probability of the unsafe labels (e.g. a Falconsai/nsfw_image_detection-style ViT saved locally with
labels normal/nsfw). Skipped with a warning when `model` is null.
"""
from qimage.datapipe.filters import register
from qimage.datapipe.filters._model import ClassifierFilter


@register
class Nsfw(ClassifierFilter):
    name = "nsfw"
    stage = 1
    what = "unsafe probability"
    params = {"model": None, "labels": ["nsfw", "porn", "hentai", "sexy", "unsafe"], "min": None, "max": 0.5}
