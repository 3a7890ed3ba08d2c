"""resolution (stage 1) and hires (stage 5): images below a training resolution, 256p and 640p.

Score: the short side in pixels of the decoded image. `hires` is the same measure at the high-resolution stage; it
is off in the default recipe because toy-scale folders are mostly under 640 px: turn it on to build a 640p set.
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


@register
class HiRes(Resolution):
    name = "hires"
    stage = 5
    params = {"min": 640, "max": None}
