"""invalid_caption (stage 3): captions that are refusals or boilerplate instead of descriptions (en and zh).

Score: the number (1-based) of the first recipe pattern (case-insensitive regular expression) that matches the
caption, 0 when none does; so decide() names the pattern from the score alone.
"""
import re

from qimage.datapipe.filters import Filter, Verdict, register

DEFAULT_PATTERNS = [
    r"\b(i'?m|i am) sorry\b", r"\bsorry,? (but )?i (can(no|')t|am unable|'m unable)", r"\bi can(no|')t (help|assist|provide|describe)",
    r"\bas an ai\b", r"\bi am unable to\b", r"\bunable to (view|see|describe|process) (the|this) image",
    r"抱歉", r"对不起", r"我无法", r"我不能", r"作为一个?(AI|人工智能)", r"无法(识别|描述|查看)",
]


@register
class InvalidCaption(Filter):
    name = "invalid_caption"
    stage = 3
    kind = "caption"
    params = {"patterns": DEFAULT_PATTERNS}

    def setup(self):
        self._re = [re.compile(p, re.IGNORECASE) for p in self.cfg["patterns"]]

    def measure(self, sample) -> float:
        return float(next((k + 1 for k, r in enumerate(self._re) if r.search(sample.caption)), 0))

    def decide(self, score: float) -> Verdict:
        if score > 0:
            return Verdict(False, score, f"caption matches refusal pattern {self.cfg['patterns'][int(score) - 1]!r}")
        return Verdict(True, score)
