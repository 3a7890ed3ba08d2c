"""small_character (stage 4): text too small to read or to render.

Score: the median OCR line height divided by the image's short side (a line 2% of the short side is about 13 px at
640p training size). Images without text score NaN and pass.
"""
import numpy as np

from qimage.datapipe.filters import RangeFilter, register
from qimage.datapipe.ocr import box_hw


@register
class SmallCharacter(RangeFilter):
    name = "small_character"
    stage = 4
    kind = "ocr"
    what = "median line height / short side"
    params = {"min": 0.02, "max": None}

    def measure(self, sample) -> float:
        if not sample.ocr:
            return float("nan")
        heights = [h for h, _ in (box_hw(q) for q, _, _ in sample.ocr)]
        return float(np.median(heights) / min(sample.width, sample.height))
