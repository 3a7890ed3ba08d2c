"""file_size (stage 1): abnormally small files.

Score: the file's size in bytes. A real photo at 256 px or more takes kilobytes; a few hundred bytes means a flat
placeholder, an icon or a failed download.
"""
from qimage.datapipe.filters import RangeFilter, register


@register
class FileSize(RangeFilter):
    name = "file_size"
    stage = 1
    kind = "file"
    what = "file size (bytes)"
    params = {"min": 2048, "max": None}

    def measure(self, sample) -> float:
        return float(sample.size_bytes)
