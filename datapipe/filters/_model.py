"""Shared base for the operators that ask a local transformers model (files starting with _ hold no filter)."""
from qimage.datapipe import models
from qimage.datapipe.filters import RangeFilter


class ModelFilter(RangeFilter):
    """Loads `model` (a local dir) once per worker; skipped with a warning when it is null or not a model dir."""

    kind = "model"
    model_kind = "classifier"

    def check(self):
        problem = models.check_model_dir(self.cfg.get("model"))
        return f"{self.name} skipped: {problem}" if problem else None

    def setup(self):
        problem = self.check()
        if problem is None:
            self._model = models.load(self.model_kind, self.cfg["model"])
        return problem


class ClassifierFilter(ModelFilter):
    """Score: the summed probability of the labels in `labels` (whole id2label names, case-insensitive: substring
    matching would count "no_watermark" as "watermark"); for a one-output regression head, its raw output."""

    def measure(self, sample) -> float:
        out = self._model(sample.work)
        if "value" in out:
            return out["value"]
        wanted = {w.lower() for w in self.cfg.get("labels", [])}
        return float(sum(p for label, p in out.items() if label.lower() in wanted))
