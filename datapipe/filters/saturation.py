"""saturation (stage 2): unnaturally saturated images (renders, heavy digital edits).

Score: mean HSV saturation / 255 in [0, 1], at the 512 px working size sampled every second pixel in each
direction (the mean of a quarter of the pixels, evenly spread, differs from the full mean by far less than any
threshold step, at a quarter of the cost).
"""
from qimage.datapipe.filters import RangeFilter, register


@register
class Saturation(RangeFilter):
    name = "saturation"
    stage = 2
    what = "mean saturation"
    params = {"min": None, "max": 0.8}

    def measure(self, sample) -> float:
        return float(sample.hsv_sub[..., 1].mean() / 255.0)
