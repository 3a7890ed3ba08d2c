"""exposure (stage 5): over- or under-exposed images (clipped highlights or crushed shadows).

Score: the larger of the fraction of grey pixels <= 5 and the fraction >= 250, at the 512 px working size.
Synthetic text renders on white backgrounds are skipped by default (their white is not overexposure).
"""
from qimage.datapipe.filters import RangeFilter, register


@register
class Exposure(RangeFilter):
    name = "exposure"
    stage = 5
    what = "clipped fraction"
    params = {"min": None, "max": 0.3}

    def measure(self, sample) -> float:
        return float(max(sample.hist[:6].sum(), sample.hist[250:].sum()))
