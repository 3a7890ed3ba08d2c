"""Text sources shipped by PyPI packages: wordfreq's word lists and faker's locales (no downloads).

Method: English and Chinese words are drawn from wordfreq's top-N lists with a Zipf-like bias towards common words;
sentences and paragraphs come either from those words or from faker's `lorem` provider (real words of the locale);
names, companies, addresses and the like come from faker. Every function takes a numpy Generator and reseeds faker
from it, so a text depends only on the generator's state, never on what a worker generated before.
"""
from __future__ import annotations

import functools
import math
import re

_HAN = re.compile(r"^[\u4e00-\u9fff]+$")
_LATIN = re.compile(r"^[a-z]+$")
ZH_PUNCT = "，。！？、；："


@functools.lru_cache(maxsize=4)
def words(lang: str, n: int = 6000) -> tuple[str, ...]:
    import wordfreq

    pattern = _HAN if lang == "zh" else _LATIN
    out = [w for w in wordfreq.top_n_list(lang, n) if pattern.match(w)]
    # single Latin letters other than "a"/"I" are noise in a rendered phrase; wordfreq lower-cases the pronoun
    return tuple("I" if w == "i" else w for w in out if lang == "zh" or len(w) > 1 or w in ("a", "i"))


@functools.lru_cache(maxsize=4)
def faker(lang: str):
    from faker import Faker

    return Faker("zh_CN" if lang == "zh" else "en_US")


def fake(rng, lang: str):
    """The locale's Faker, reseeded from `rng` so its output is a function of the generator alone."""
    f = faker(lang)
    f.seed_instance(int(rng.integers(2**31)))
    return f


def word(rng, lang: str) -> str:
    ws = words(lang)
    # rank log-uniform from the 30th word on (so "the"/"的" do not fill every phrase), top 30 now and then
    if rng.random() < 0.1:
        return ws[int(rng.integers(30))]
    i = int(math.exp(rng.uniform(math.log(30), math.log(len(ws)))))
    return ws[min(i, len(ws) - 1)]


def _case(rng, text: str) -> str:
    r = rng.random()
    if r < 0.45:
        return text[:1].upper() + text[1:]
    if r < 0.65:
        return text.title()
    if r < 0.8:
        return text.upper()
    return text


def phrase(rng, lang: str, n_words: int) -> str:
    if lang == "mix":
        return mixed(rng, n_words)
    ws = [word(rng, lang) for _ in range(max(1, n_words))]
    if lang == "zh":
        return "".join(ws)
    return _case(rng, " ".join(ws))


def mixed(rng, n_words: int) -> str:
    """English and Chinese words in one text, as on bilingual signs and slides."""
    parts, zh_run = [], rng.random() < 0.5
    while len(parts) < max(2, n_words):
        k = int(rng.integers(1, 3))
        if zh_run:
            parts.append("".join(word(rng, "zh") for _ in range(k)))
        else:
            parts.append(_case(rng, " ".join(word(rng, "en") for _ in range(k))))
        zh_run = not zh_run
    return " ".join(parts)


def sentence(rng, lang: str) -> str:
    if lang == "mix":
        return mixed(rng, int(rng.integers(3, 7)))
    if rng.random() < 0.5:
        s = fake(rng, lang).sentence(nb_words=int(rng.integers(4, 10)))
        return s.replace(".", "。") if lang == "zh" else s
    n = int(rng.integers(3, 8)) if lang == "zh" else int(rng.integers(4, 11))
    ws = [word(rng, lang) for _ in range(n)]
    if lang == "zh":
        cut = int(rng.integers(1, n)) if n > 2 and rng.random() < 0.5 else None
        body = "".join(ws[:cut]) + ("，" + "".join(ws[cut:]) if cut else "")
        return body + ZH_PUNCT[int(rng.integers(1, 4))]
    return " ".join(ws).capitalize() + (".", "!", "?")[int(rng.choice(3, p=[0.8, 0.1, 0.1]))]


def paragraph(rng, lang: str, n_sentences: int) -> str:
    sents = [sentence(rng, lang) for _ in range(max(1, n_sentences))]
    return ("" if lang == "zh" else " ").join(sents)


def text(rng, lang: str, mode: str) -> str:
    """A text for `mode`: word (1-2 words), phrase (2-6), sentence, or paragraph (2-5 sentences)."""
    if mode == "word":
        return phrase(rng, lang, int(rng.integers(1, 3)))
    if mode == "phrase":
        return phrase(rng, lang, int(rng.integers(2, 7)))
    if mode == "sentence":
        return sentence(rng, lang)
    return paragraph(rng, lang, int(rng.integers(2, 6)))
