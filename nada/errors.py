"""The two errors every layer may raise to the user: a bad parameter, a bad command line.

They live at the bottom of the import graph (stdlib only) so that `stylegan2/`, `jobs/`,
`worker/` and `backend/` can raise them without importing the application that catches
them (the `nada` dispatcher prints a CLIError; the API turns a ParamError into a 422).
"""

from __future__ import annotations


class ParamError(ValueError):
    """A parameter outside its allowed values. `field` names the knob; str() says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


class CLIError(Exception):
    """A user-facing error: printed as `nada: error: <message>` with exit status 2."""


class InputError(ValueError):
    """A job's input cannot be used (a photo with no face, a code for another generator);
    str() says why in the user's terms. Workers record it as error code `invalid_input`."""
