"""qr_code (stage 5): images containing QR codes (abnormal elements).

Score: the number of QR codes OpenCV's ArUco-based detector finds on the image with its long side at
`detect_side` px. At 256 px it costs ~3 ms and finds codes spanning about a third of the image or more; in our probe
a code a fifth of the image wide needed 512 px (~2.5x the cost): raise detect_side for small codes.
"""
import cv2

from qimage.datapipe.filters import RangeFilter, register
from qimage.datapipe.sample import fit_side

_DETECTOR = None


def count_qr(grey, side: int) -> int:
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = cv2.QRCodeDetectorAruco()
    ok, points = _DETECTOR.detectMulti(fit_side(grey, side))
    return int(len(points)) if ok and points is not None else 0


@register
class QrCode(RangeFilter):
    name = "qr_code"
    stage = 5
    what = "QR codes found"
    params = {"min": None, "max": 0, "detect_side": 256}

    def measure(self, sample) -> float:
        return float(count_qr(sample.grey, int(self.cfg["detect_side"])))
