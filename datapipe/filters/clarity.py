"""clarity (stage 2): blurred or out-of-focus images.

Score: variance of the Laplacian of the grey image with its long side at 512 px. Sharp edges give large
second derivatives; blur flattens them. Below 100 is the usual blur cut.
"""
import cv2

from qimage.datapipe.filters import RangeFilter, register


@register
class Clarity(RangeFilter):
    name = "clarity"
    stage = 2
    what = "Laplacian variance"
    params = {"min": 100.0, "max": None}

    def measure(self, sample) -> float:
        # 16-bit Laplacian + meanStdDev: same variance as a float64 Laplacian, ~5x cheaper
        std = cv2.meanStdDev(cv2.Laplacian(sample.grey, cv2.CV_16S))[1][0, 0]
        return float(std * std)
