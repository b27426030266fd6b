"""The one exception type for bad input: its message is a single line naming the fix."""


class UserError(Exception):
    """Bad input from the user. str(e) is one line that says what to do instead."""
