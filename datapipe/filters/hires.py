"""hires (stage 5): the minimum resolution of the 640p high-resolution stage.

Score: the short side in pixels. Off in the default recipe because toy-scale folders are mostly under 640 px;
turn it on to build a 640p training set.
"""
from qimage.datapipe.filters import RangeFilter, register


@register
class HiRes(RangeFilter):
    name = "hires"
    stage = 5
    what = "short side (px)"
    params = {"min": 640, "max": None}

    def measure(self, sample) -> float:
        return float(min(sample.width, sample.height))
