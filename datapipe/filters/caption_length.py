"""caption_length (stage 3): overly long captions.

Score: caption length in tokens, counting each CJK character as one token and each run of other letters/digits
or each punctuation mark as one (close to what BPE tokenizers give for English, without loading one). A missing
caption has length 0 and is recorded as such, not rejected.
"""
import re

from qimage.datapipe.filters import RangeFilter, register

_CJK = "\u3400-\u9fff\uf900-\ufaff"
# A letter run stops at a CJK character, so "abc中文" is abc + 中 + 文, not one token.
_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+|[^\w\s]", re.UNICODE)


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@register
class CaptionLength(RangeFilter):
    name = "caption_length"
    stage = 3
    kind = "caption"
    what = "caption tokens"
    params = {"min": None, "max": 300}

    def measure(self, sample) -> float:
        return float(count_tokens(sample.caption))
