"""Prompt sources and templates; importing the package registers ``arena_hard``, ``mt_bench``, ``ifeval``."""

from aries_lit.prompts import arena_hard as _arena_hard  # noqa: F401 - registers arena_hard
from aries_lit.prompts import ifeval as _ifeval  # noqa: F401 - registers ifeval
from aries_lit.prompts import mt_bench as _mt_bench  # noqa: F401 - registers mt_bench
