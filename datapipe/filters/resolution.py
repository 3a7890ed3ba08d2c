"""resolution (stage 1): images below the 256p training resolution.

Score: the short side in pixels of the decoded image.
"""
from qimage.datapipe.filters import RangeFilter, register


@register
class Resolution(RangeFilter):
    name = "resolution"
    stage = 1
    what = "short side (px)"
    params = {"min": 256, "max": None}

    def measure(self, sample) -> float:
        return float(min(sample.width, sample.height))
