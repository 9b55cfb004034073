"""The one error type for bad user data (file, record, field): :class:`aries_lit.errors.DataValidationError`,
importable from here too."""

from aries_lit.errors import DataValidationError

__all__ = ["DataValidationError"]
