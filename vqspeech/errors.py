"""The one exception type the command line turns into a one-line message."""


class UserError(Exception):
    """Something the user can fix: a bad path, a bad override, unusable data.

    The message says what is wrong and what to do; the CLI prints it as ``error: <message>``
    without a traceback and exits with status 2.
    """
