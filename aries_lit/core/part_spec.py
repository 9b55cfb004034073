"""A pluggable part of a config, parsed once: :class:`PartSpec` (``class_path`` + ``init_args``).

A config writes a part as LightningCLI writes one, ``{class_path: X, init_args: {...}}``, where
``X`` is a short registry name (``verifier``, ``vllm``) or a dotted class path, or, for a part
without options, as the bare name (``selector: verifier``). :meth:`PartSpec.from_config` reads
either and refuses anything else in one line that names the place; the older ``name:`` forms
(``{name: X, ...}``) are refused with the line that says how to write them
(:func:`name_form_error`). Every registry's ``build`` takes a :class:`PartSpec` as it is.

Bottom layer: imports nothing from aries_lit but its errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aries_lit.core.errors import SettingsError

#: options of a part that hold a part of their own (a generator's or judge's ``backend``, a
#: group or unpaired selector's ``scorer``): checked for the ``name:`` form too
NESTED_PARTS = ("backend", "scorer")


def uses_name_form(spec: Any) -> bool:
    """Whether ``spec`` is one of the old ``name:`` forms (``{name: X, ...}``, no ``class_path``)."""
    return isinstance(spec, Mapping) and "name" in spec and "class_path" not in spec


def name_form_error(spec: Mapping[str, Any], where: str) -> SettingsError:
    """The one-line error for a ``name:`` spec at ``where``: how to write it instead."""
    target = spec["name"]
    options = {k: v for k, v in spec.items() if k not in ("name", "init_args")} or spec.get("init_args")
    write = (
        f"{{class_path: {target}, init_args: {{...}}}}"
        if options
        else f"{target} (or {{class_path: {target}}})"
    )
    return SettingsError(f"{where}: write {write}; the 'name:' form of a part is no longer read")


def refuse_name_form(spec: Any, where: str) -> None:
    """Raise :func:`name_form_error` when ``spec`` (or a part nested in its options) uses ``name:``."""
    if uses_name_form(spec):
        raise name_form_error(spec, where)
    if isinstance(spec, Mapping):
        options = spec.get("init_args") if isinstance(spec.get("init_args"), Mapping) else {}
        for key in NESTED_PARTS:
            for value in (options.get(key), spec.get(key)):
                if uses_name_form(value):
                    raise name_form_error(value, f"{where}.{key}")


@dataclass(frozen=True)
class PartSpec:
    """One part: the class to build (a short registry name or a dotted path) and its options.

    ``bare`` records that the config wrote the part as its bare name (``selector: verifier``); it
    builds the same as ``{class_path: verifier}``, but a study's stage keys hash the spec as
    written (:mod:`aries_lit.pipeline.study_keys`), so the distinction is kept. The options are
    read, never changed: :meth:`with_options` returns a new spec.
    """

    class_path: str
    init_args: Mapping[str, Any] = field(default_factory=dict)
    bare: bool = False

    @classmethod
    def from_config(cls, value: Any, where: str) -> PartSpec:
        """A part from a config value: a bare name, or ``{class_path: X, init_args: {...}}`` (options
        written beside ``class_path`` are merged under ``init_args``, as the registries read them).
        Anything else, a ``name:`` form included, is one :class:`SettingsError` naming ``where``."""
        if isinstance(value, PartSpec):
            return value
        if isinstance(value, str) and value:
            return cls(value, {}, bare=True)
        if not isinstance(value, Mapping):
            raise SettingsError(
                f"{where}: a part is a name or {{class_path: NAME, init_args: {{...}}}}, got {value!r}"
            )
        refuse_name_form(value, where)
        if "name" in value:
            raise SettingsError(f"{where}: gives both 'class_path' and 'name'; keep 'class_path'")
        options = {k: v for k, v in value.items() if k not in ("class_path", "init_args")}
        init_args = value.get("init_args") or {}
        if not isinstance(init_args, Mapping):
            raise SettingsError(f"{where}.init_args: a mapping of options, got {init_args!r}")
        target = value.get("class_path")
        if not isinstance(target, str) or not target:
            raise SettingsError(
                f"{where}: field 'class_path' is missing (a short name or a dotted class path)"
            )
        return cls(target, {**init_args, **options})

    def with_options(self, **options: Any) -> PartSpec:
        """This part with ``options`` set (it is then written ``{class_path, init_args}``)."""
        return PartSpec(self.class_path, {**self.init_args, **options})

    def config(self) -> str | dict[str, Any]:
        """The part as a config writes it: the bare name, or ``{class_path, init_args}``
        (``init_args`` left out when there are no options)."""
        if self.bare and not self.init_args:
            return self.class_path
        if not self.init_args:
            return {"class_path": self.class_path}
        return {"class_path": self.class_path, "init_args": dict(self.init_args)}


__all__ = ["NESTED_PARTS", "PartSpec", "name_form_error", "refuse_name_form", "uses_name_form"]
