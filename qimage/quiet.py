"""Quiet third-party logging: the libraries' own progress bars (loading weights) would drown qimage's."""
from __future__ import annotations


def quiet_libraries() -> None:
    """diffusers' and transformers' progress bars off and their logs at error level; errors still surface."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
