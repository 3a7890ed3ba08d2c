"""barcode (stage 5): images containing 1-D barcodes (abnormal elements).

Score: the number of barcodes OpenCV's `cv2.barcode.BarcodeDetector` finds on the 512 px grey image.
"""
import cv2

from qimage.datapipe.filters import RangeFilter, register

_DETECTOR = None


@register
class Barcode(RangeFilter):
    name = "barcode"
    stage = 5
    what = "barcodes found"
    params = {"min": None, "max": 0}

    def measure(self, sample) -> float:
        global _DETECTOR
        if _DETECTOR is None:
            _DETECTOR = cv2.barcode.BarcodeDetector()
        ok, points = _DETECTOR.detect(sample.grey)
        return float(len(points)) if ok and points is not None else 0.0
