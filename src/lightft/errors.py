"""User-facing errors: one line that says what was expected, what was found, and how to fix it."""


class LightftError(Exception):
    """A problem with the user's input or environment.

    The CLI prints ``error: <message>`` and exits with status 2; library callers catch it like any
    exception. Messages are a single line and name the flag or file the user gave.
    """


class LightftWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. ``--compile`` fell back to eager).

    The CLI prints ``warning: <message>`` on one line; library callers get an ordinary Python warning.
    """
