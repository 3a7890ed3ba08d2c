"""luma (stage 2): images too dark or too bright.

Score: mean luma (0.299 R + 0.587 G + 0.114 B) / 255 in [0, 1], at the 512 px working size.
"""
import numpy as np

from qimage.datapipe.filters import RangeFilter, register


@register
class Luma(RangeFilter):
    name = "luma"
    stage = 2
    what = "mean luma"
    params = {"min": 0.06, "max": 0.94}

    def measure(self, sample) -> float:
        return float(np.dot(sample.hist, np.arange(256)) / 255.0)
