"""invalid_caption (stage 3): captions that are refusals or boilerplate instead of descriptions (en and zh).

Score: 1 when any recipe pattern (case-insensitive regular expression) matches the caption, else 0.
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
        self._hit = next((r.pattern for r in self._re if r.search(sample.caption)), None)
        return 1.0 if self._hit else 0.0

    def decide(self, score: float) -> Verdict:
        if score > 0:
            return Verdict(False, score, f"caption matches refusal pattern {self._hit!r}")
        return Verdict(True, score)
