"""Warnings point at the user's own line, past lightft and the libraries it calls through."""

from __future__ import annotations

import warnings

import torch

from lightft.errors import LightftWarning, warn_user


def test_a_warning_from_inside_lightft_names_the_users_line():
    namespace = {"__name__": "lightft.fake", "warn_user": warn_user}
    exec("def inner():\n    warn_user('from inside')\n", namespace)  # a lightft module's function ...
    decorated = torch.no_grad()(namespace["inner"])  # ... behind a torch decorator, as evaluate is

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decorated(); line = __import__("inspect").currentframe().f_lineno  # noqa: E702 - the call's own line
    assert caught[0].category is LightftWarning
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_first_line_cuts_a_long_message_between_words():
    from lightft.errors import first_line

    assert first_line(ValueError("\n  short reason\nmore")) == "short reason"
    assert first_line(KeyError()) == "KeyError"
    long = ValueError("word " * 100)
    assert first_line(long, 30) == "word word word word word word..."
    assert first_line(ValueError("x" * 50), 30) == "x" * 30 + "..."  # no space to cut at
