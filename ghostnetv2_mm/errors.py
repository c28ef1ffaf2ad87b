"""The errors every layer of the package may raise (this module imports nothing of
the package, so that checkpoints, models, deployment and the tools can all use it).

A :class:`UserError` is a mistake in what the user asked for; the tools' shared error
path (:func:`ghostnetv2_mm.utils.cli.tool_main`) prints it as one line.
"""


class UserError(Exception):
    """A mistake in what the user asked for: reported as one line, no traceback.

    Args:
        message (str): What is wrong: the argument or file, its value, what is
            allowed.
        status (int): The exit status (1; 2 for argument errors).
    """

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status
