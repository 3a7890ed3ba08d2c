"""texture (stage 2): overly complex texture (an upper bound; noise, dense gravel-like patterns).

Score: edge density, the fraction of pixels of the 512 px grey image whose Sobel gradient |gx| + |gy| exceeds
`edge_level` (grey levels per pixel). Photos with a subject sit well below the textures the filter targets.
"""
import cv2
import numpy as np

from qimage.datapipe.filters import RangeFilter, register


@register
class Texture(RangeFilter):
    name = "texture"
    stage = 2
    what = "edge density"
    params = {"min": None, "max": 0.45, "edge_level": 100}

    def measure(self, sample) -> float:
        g = sample.grey
        gx = cv2.Sobel(g, cv2.CV_16S, 1, 0, ksize=3)
        gy = cv2.Sobel(g, cv2.CV_16S, 0, 1, ksize=3)
        mag = cv2.add(cv2.convertScaleAbs(gx), cv2.convertScaleAbs(gy))
        return float(np.count_nonzero(mag > self.cfg["edge_level"]) / mag.size)
