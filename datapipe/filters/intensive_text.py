"""intensive_text (stage 4): images whose text is too dense to caption verbatim or learn to render.

Score: the fraction of the image area covered by OCR text boxes (sum of box areas, capped at 1). Boxes come from
the one OCR pass per image that also gives the language split and small_character.
"""
from qimage.datapipe.filters import RangeFilter, register
from qimage.datapipe.ocr import box_hw


@register
class IntensiveText(RangeFilter):
    name = "intensive_text"
    stage = 4
    kind = "ocr"
    what = "text area fraction"
    params = {"min": None, "max": 0.35}

    def measure(self, sample) -> float:
        area = sum(h * w for h, w in (box_hw(q) for q, _, _ in sample.ocr))
        return float(min(1.0, area / float(sample.width * sample.height)))
