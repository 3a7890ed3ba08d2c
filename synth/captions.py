"""Caption templates.

The report's template for rendered text is `On a <background color> background, displaying <word color> text
"<word>".`; the variations below keep its three slots (surface, colour, verbatim text) and change only the wording,
so a model sees the same facts phrased several ways. The quoted text is always the rendered text, verbatim
(lines joined by a space for Latin, directly for Chinese). Chinese captions use Chinese quotes around the same text.
"""
from __future__ import annotations

EN_TEXT = [
    'On a {bg} background, displaying {fg} text "{text}".',
    'The {fg} text "{text}" on a {bg} background.',
    'A {bg} background with the words "{text}" written in {fg}.',
    '{Fg} text reading "{text}" is displayed on a {bg} background.',
    'Plain {bg} background, {fg} lettering: "{text}".',
    'An image of {fg} text on {bg}, which says "{text}".',
]
ZH_TEXT = [
    "在{bg}背景上，显示{fg}文字“{text}”。",
    "{bg}背景上写着{fg}的文字“{text}”。",
    "一张{bg}背景的图片，上面用{fg}写着“{text}”。",
    "{fg}文字“{text}”显示在{bg}背景上。",
]
EN_MEDIUM = [
    'On a {medium} in {scene}, displaying {fg} {how} text "{text}".',
    'A photo of a {medium} with {fg} {how} text "{text}", {scene} behind it.',
    'A {medium} in {scene}; {fg} {how} text on it reads "{text}".',
    '{Scene} with a {medium} showing the {fg} {how} words "{text}".',
]
ZH_MEDIUM = [
    "在{scene}中的一块{medium}上，显示{fg}{how}文字“{text}”。",
    "一张照片：{medium}上有{fg}{how}文字“{text}”，背景是{scene}。",
    "{scene}里的{medium}上写着{fg}的字“{text}”。",
]
EN_DOC = [
    'A {doc} with {n} text elements, titled "{title}", containing the text {quoted}.',
    'On a {bg} {doc}, displaying the text {quoted}.',
    'A {doc} design in {bg} and {accent}; it reads {quoted}.',
]
ZH_DOC = [
    "一张{doc}，标题为“{title}”，包含文字{quoted}。",
    "在{bg}的{doc}上，显示文字{quoted}。",
    "一份{bg}和{accent}配色的{doc}设计，上面写着{quoted}。",
]


def joined(texts: list[str], lang: str) -> str:
    """Lines of one block as they read: Chinese lines concatenate, Latin lines join with a space."""
    sep = "" if lang == "zh" else " "
    return sep.join(t.strip() for t in texts)


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def text_caption(rng, lang: str, bg: str, fg: str, text: str) -> str:
    tpl = _pick(rng, ZH_TEXT if lang == "zh" else EN_TEXT)
    return tpl.format(bg=bg, fg=fg, Fg=fg[:1].upper() + fg[1:], text=text)


def medium_caption(rng, lang: str, medium: str, scene: str, fg: str, how: str, text: str) -> str:
    tpl = _pick(rng, ZH_MEDIUM if lang == "zh" else EN_MEDIUM)
    return tpl.format(medium=medium, scene=scene, Scene=scene[:1].upper() + scene[1:], fg=fg, how=how, text=text)


def doc_caption(rng, lang: str, doc: str, bg: str, accent: str, title: str, texts: list[str]) -> str:
    if lang == "zh":
        quoted = "、".join(f"“{t}”" for t in texts)
    else:
        quoted = ", ".join(f'"{t}"' for t in texts)
    tpl = _pick(rng, ZH_DOC if lang == "zh" else EN_DOC)
    return tpl.format(doc=doc, n=len(texts), title=title, quoted=quoted, bg=bg, accent=accent)
