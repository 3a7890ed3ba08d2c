"""The one exception type that means "the user's input is wrong".

The CLI prints it as a single line and exits 2; anything else is a bug and exits 1.
"""


class UserError(Exception):
    """Bad input: a path, a size, a config value. The message is shown to the user as is."""
