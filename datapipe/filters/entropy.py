"""entropy (stage 2): images dominated by large uniform areas.

Score: Shannon entropy in bits (0..8) of the 256-bin grey histogram. A flat fill is 0 bits, a natural photo
typically 6.5-7.8.
"""
import numpy as np

from qimage.datapipe.filters import RangeFilter, register


@register
class Entropy(RangeFilter):
    name = "entropy"
    stage = 2
    what = "grey entropy (bits)"
    params = {"min": 3.0, "max": None}

    def measure(self, sample) -> float:
        p = sample.hist[sample.hist > 0]
        return float(-(p * np.log2(p)).sum())
