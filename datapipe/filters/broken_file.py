"""broken_file (stage 1): the file must decode to pixels.

Score: none. A file is broken when PIL cannot identify it, when decoding raises (truncated JPEG: `verify()` passes
but `load()` fails), when it is empty, or when its header claims more than `max_pixels` (a decompression bomb is
refused before any pixel is allocated). CMYK, 16-bit, palette, alpha and animated files are not broken: they are
converted to 8-bit RGB (first frame, alpha on white).
"""
from qimage.datapipe.filters import Filter, Verdict, register
from qimage.datapipe.sample import DecodeError


@register
class BrokenFile(Filter):
    name = "broken_file"
    stage = 1
    kind = "file"
    mandatory = True
    params = {"max_pixels": 64_000_000}

    def __call__(self, sample) -> Verdict:
        sample.max_pixels = int(self.cfg["max_pixels"])
        try:
            sample.decode()
        except DecodeError as e:
            return Verdict(False, float("nan"), str(e))
        return Verdict(True, float("nan"))
