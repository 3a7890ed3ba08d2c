"""HTML reports from Jinja2 templates shipped beside the modules that fill them (autoescaped, undefined names fail)."""
from __future__ import annotations

import base64


def number(v: float) -> str:
    """A short human number: 0, 12, 0.153, 24.5k, 1.2M."""
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e4 and float(v).is_integer():
        return str(int(v))
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


def render(template: str, package: str, **context) -> str:
    """``template`` (a file in ``package``) rendered with ``context``; filters: ``num`` (``number``), ``b64``."""
    from importlib.resources import files

    import jinja2

    env = jinja2.Environment(loader=jinja2.FunctionLoader(lambda name: (files(package) / name).read_text("utf-8")),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=number, b64=lambda b: base64.b64encode(b).decode())
    return env.get_template(template).render(**context)
