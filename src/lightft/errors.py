"""User-facing errors: one line that says what was expected, what was found, and how to fix it."""


class LightftError(Exception):
    """A problem with the user's input or environment.

    The CLI prints ``error: <message>`` and exits with status 2; library callers catch it like any
    exception. Messages are a single line and name the flag or file the user gave.
    """


class SharedError(LightftError):
    """A ``LightftError`` every process of an ``accelerate launch`` group raises, on the main process's finding (its
    saved state, its output name) or on one they met alike: the CLI prints it once, from the main process. ``where``
    names the process it came from when the others did not meet it (' (process 1 of 2)')."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(message)
        self.where = where


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`), raised by the CLI's handler: handled like Ctrl-C (nothing half-written; after a kept epoch
    the run finishes with it), and the CLI exits 143 as killed programs do (a run finished early on it too)."""


def warn_user(message: str) -> None:
    """A LightftWarning attributed to the first caller outside lightft and the libraries it calls through (torch's
    decorators, accelerate), so a Python user sees the line of their own code that led to it."""
    import sys
    import warnings

    internal = ("lightft", "torch", "accelerate", "transformers", "peft", "contextlib", "tqdm")
    level, frame = 2, sys._getframe(1)  # stacklevel 1 is this function, 2 its caller
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in internal:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, LightftWarning, stacklevel=level)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's first non-blank line (its type's name when it has none) for the middle of a one-line error, cut
    at a word boundary with "..." beyond ``limit`` characters."""
    line = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return f"{cut if len(cut) > limit // 2 else line[:limit]}..."


def did_you_mean(name: str, choices) -> str:
    """' (did you mean 'lora'?)' for a near miss or another case, else ''; for the end of an error's first clause."""
    import difflib

    choices = [str(c) for c in choices]
    same_case = [c for c in choices if c.lower() == str(name).lower()]
    close = same_case or difflib.get_close_matches(str(name).lower(), choices, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


class LightftWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. ``--compile`` fell back to eager).

    The CLI prints ``warning: <message>`` on one line; library callers get an ordinary Python warning.
    """
