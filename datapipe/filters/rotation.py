"""rotation (stage 2): images whose EXIF orientation says they are stored rotated or mirrored.

Score: the EXIF orientation tag (1 = upright; 2, 4, 5, 7 mirror; 3, 6, 8 rotate). Qwen-Image drops such images
rather than trusting the tag; images kept with a non-1 tag (when the recipe allows it) are written upright.
"""
from qimage.datapipe.filters import Filter, Verdict, register

MEANING = {2: "mirrored", 3: "rotated 180", 4: "flipped vertically", 5: "transposed", 6: "rotated 90",
           7: "transversed", 8: "rotated 270"}


@register
class Rotation(Filter):
    name = "rotation"
    stage = 2
    params = {"reject": [2, 3, 4, 5, 6, 7, 8]}

    def measure(self, sample) -> float:
        return float(sample.orientation)

    def decide(self, score: float) -> Verdict:
        tag = int(score)
        if tag in set(self.cfg["reject"]):
            return Verdict(False, score, f"EXIF orientation {tag} ({MEANING.get(tag, 'unknown')})")
        return Verdict(True, score)
