"""The one error type for bad user data (file, record, field):
:class:`aries_lit.core.errors.DataValidationError`, importable from here too."""

from aries_lit.core.errors import DataValidationError

__all__ = ["DataValidationError"]
