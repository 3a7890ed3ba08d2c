"""The toy's byte-level Qwen2 tokenizer, shaped so that diffusers' fixed template drop stays exact.

Qwen-Image wraps every prompt in a chat template and drops its first 34 tokens, the system part as Qwen's own
tokenizer counts it: ``<|im_start|>``, ``system``, ``\\n``, ``Describe``, `` the``, ... ``background``, ``:``,
``<|im_end|>``, ``\\n``, ``<|im_start|>``, ``user``, ``\\n``. diffusers' pipeline drops 34 tokens whatever the tokenizer.

A purely byte-level tokenizer (every UTF-8 byte a token, so any Chinese or Latin text is representable and every
letter of a quoted word is its own token, which is what lets a tiny model bind letters to glyphs) would split the
system part into ~150 tokens and leave ~115 of them in the conditioning. So the toy tokenizer is byte-level plus
exactly the BPE merges that rebuild the system line's words: the prefix is then 34 tokens, the drop removes exactly
the system part, and the conditioning is the user's prompt plus the assistant header, as for the real model.
The merges join a space and lowercase letters, plus the chains of ``Describe``, ``system`` and ``user`` (which can
also fire inside other words: "museum" becomes m, use, u, m); quoted uppercase words always stay one token per byte.

Two more vocabulary choices serve the toy's captions, ``On a <bg> background, displaying <fg> text "WORD".``:
- the caption's fixed words (``On``, `` displaying``, `` "``, ``".``) are merged too, so a 4-letter word is 4 of ~20
  conditioning tokens rather than 4 of ~45 bytes;
- every colour name is one added token with its leading space (`` light gray``, `` navy blue``, `` white``), matched
  before pre-tokenisation so that two-word names are one token as well. Then the quoted letters sit at the same token
  positions whatever the colours, and the denoiser can bind letter k to its place in the image by position, which is
  what the probes found a small model learns in minutes (docs/toy.md). Colour names only match with the leading space,
  so the tokenisation stays lossless (decode gives the text back byte for byte).
- the scenes captions' words (``A photo of two red circles.``, ``A gray star right of a black triangle on a cream
  background.``) are added tokens too: the counts, the shape nouns (singular and plural), the relations and the four
  templates' fixed words. Byte by byte the first caption is 20 tokens and a shape noun spreads over 5-8 of them, which
  the n-gram encoder (a token and the three before it) never sees whole; as words, `` circles`` carries `` red``,
  `` two`` and ``A photo of`` in its own feature, and `` right of`` carries the subject it follows. Like the colours they
  may also fire inside a longer word (`` start`` becomes `` star``, ``t``), which costs nothing but a stranger split:
  decoding stays lossless. None occurs in the system prefix or the words captions, so those tokenise exactly as
  before; they are appended after the colours, so the n-gram encoder's rows for every older token stay the same.
"""
from __future__ import annotations

import functools

from qimage.synth import scenes
from qimage.synth.colors import PALETTE
from qimage.text_encoder import EDIT_DROP, EDIT_TEMPLATE, PROMPT_TEMPLATE, TEMPLATE_DROP

SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
)


# The colour names of the synthesisers' palette, one source of truth: every colour a caption can name is one token.
# Shipped models carry their own tokenizer files, so a colour added to the palette changes only tokenizers built later.
COLOR_NAMES = tuple(c.name for c in PALETTE)
CAPTION_WORDS = ("On", " displaying", ' "', '".')
# The scenes captions' words, read from the synthesiser that writes them (a test checks every scenes caption is made
# of them). Counts are capitalised too: a caption may start with one ("Two yellow hexagons on a cream background.").
SCENE_WORDS = (
    *(f" {n}" for n in scenes.NUM_EN[2:]), *(n.capitalize() for n in scenes.NUM_EN[2:]),
    *(f" {s}{p}" for s in scenes.SHAPES for p in ("", "s")),
    *(f" {r}" for r in scenes.RELATIONS),
    *scenes.TEMPLATE_WORDS,
)
# Edit models only (``build_edit_tokenizer``): the words of the edit template's system part that the template
# merges do not already make one token, so that part is EDIT_DROP (64) tokens as Qwen's tokenizer counts it, and the
# first words of the toy's edit instructions (synth --edit-pairs: "Change the text to ...", "Make the background
# ...", "Add a ...", "Remove the ..."). Appended after every text-to-image token, so an edit model built from a
# text-to-image one keeps each older token's id (and the n-gram encoder's row for it).
EDIT_WORDS = (
    " key", " features", " input", " (color", " then", " explain", " how", " user", "'s", " instruction", " should",
    " alter", " or", " modify", " Generate", " new", " that", " meets", " requirements", " while", " maintaining",
    " consistency", " with", " original", " where", " appropriate", "Change", "Make", "Add", "Remove", " to",
)


@functools.cache
def byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes 0..255 (printable Latin-1 maps to itself)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def _pretokens(text: str) -> list[str]:
    """The words of the system prefix as Qwen's pre-tokenizer splits them (a leading space stays with the word)."""
    import re

    return re.findall(r" ?[A-Za-z]+|[^A-Za-z]", text)


def template_merges() -> list[tuple[str, str]]:
    """Left-to-right merge chains that turn each word of the template's system prefix (and caption words) into a token."""
    system_part = PROMPT_TEMPLATE.split("<|im_start|>user")[0].split("<|im_start|>")[1].split("<|im_end|>")[0]
    words = _pretokens(system_part) + ["user", "assistant", *CAPTION_WORDS]
    sym = byte_symbols()
    merges, seen = [], set()
    for word in words:
        pieces = [sym[b] for b in word.encode("utf-8")]
        if len(pieces) < 2:
            continue
        acc = pieces[0]
        for p in pieces[1:]:
            if (acc, p) not in seen:
                seen.add((acc, p))
                merges.append((acc, p))
            acc += p
    return merges


def build_byte_tokenizer():
    """A transformers ``Qwen2Tokenizer``: 256 byte tokens, the template merges, and Qwen's chat special tokens."""
    from transformers import AddedToken, Qwen2Tokenizer

    vocab = {s: i for i, s in enumerate(byte_symbols())}
    merges = template_merges()
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS[1:]]}
    )
    # longest first, so " light gray" wins over " gray" wherever both could match
    colors = sorted(COLOR_NAMES, key=len, reverse=True)
    tok.add_tokens([AddedToken(" " + c, normalized=False, special=False) for c in colors])
    scene = sorted(SCENE_WORDS, key=len, reverse=True)
    tok.add_tokens([AddedToken(w, normalized=False, special=False) for w in scene])
    tok.model_max_length = 32768
    n = len(tok(PROMPT_TEMPLATE.split("{}")[0])["input_ids"])
    if n != TEMPLATE_DROP:  # the whole point of this tokenizer; fail loudly if a transformers change breaks it
        raise RuntimeError(f"toy tokenizer splits the template prefix into {n} tokens, expected {TEMPLATE_DROP}")
    return tok


def build_edit_tokenizer():
    """The byte tokenizer plus ``EDIT_WORDS``: the edit template's system part becomes exactly EDIT_DROP tokens."""
    from transformers import AddedToken

    tok = build_byte_tokenizer()
    tok.add_tokens([AddedToken(w, normalized=False, special=False) for w in sorted(EDIT_WORDS, key=len, reverse=True)])
    n = len(tok(EDIT_TEMPLATE.split("<|vision_start|>")[0])["input_ids"])
    if n != EDIT_DROP:
        raise RuntimeError(f"toy edit tokenizer splits the edit template's prefix into {n} tokens, expected {EDIT_DROP}")
    return tok
