"""The resolved settings of a part: every constructor option, defaults included, nested parts
resolved too; the canonical form a study's keys hash (:mod:`aries_lit.pipeline.study_keys`).

A config names only what it changes; what it leaves out is the constructor's default. Hashing the
config as written would let a changed default reuse a stage or an evaluation run under the old one.
:func:`resolved_part` fills every option the class's ``__init__`` declares with its default, and
resolves options that hold parts of their own (a generator's ``backend``, a module's ``loss``, a
composite loss's ``preference`` and ``refine``, a selector's ``scorer``) the same way, so any
default anywhere in a stage moves its key. A class is named by its registry name when it has one
(moving a class between modules moves no key), else by its dotted path.

Values are reduced to JSON (:func:`jsonable`): a tuple is a list, a dataclass its fields, an
enum its value, a type or function its dotted name, and any other object its class's dotted name
(never a ``repr`` that could hold a memory address), so keys are the same in every process.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aries_lit.core.part_spec import PartSpec
from aries_lit.core.registry import Registry, import_object, split_spec


def _registries() -> dict[str, Registry[Any]]:
    """The registry of each option name that holds a part (imported late: they are heavy)."""
    from aries_lit.generators import GENERATORS
    from aries_lit.generators.backends import BACKENDS
    from aries_lit.losses import LOSSES
    from aries_lit.prompts.base import PROMPT_SOURCES
    from aries_lit.selectors import SELECTORS

    return {
        "prompts": PROMPT_SOURCES,
        "generator": GENERATORS,
        "selector": SELECTORS,
        "scorer": SELECTORS,
        "backend": BACKENDS,
        "loss": LOSSES,
        "preference": LOSSES,
        "refine": LOSSES,
    }


def _dotted(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def jsonable(value: Any) -> Any:
    """``value`` as JSON data, the same in every process (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, PartSpec):
        return jsonable(value.config())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, type) or callable(value):
        return _dotted(value) if hasattr(value, "__qualname__") else _dotted(type(value))
    return _dotted(type(value))


def _class_of(target: str, registry: Registry[Any] | None) -> type | None:
    """The class ``target`` names, or ``None`` when it cannot be found (then hashed as written)."""
    try:
        cls = registry.get(target) if registry is not None else import_object(target)
    except (ImportError, AttributeError, KeyError, ValueError):
        return None
    return cls if isinstance(cls, type) else None


def _name_of(cls: type, registry: Registry[Any] | None) -> str:
    """The class's registry name when it has one, else its dotted path."""
    name = registry.name_of(cls) if registry is not None else None
    return name if name is not None else _dotted(cls)


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _parameters(obj: Any) -> list[inspect.Parameter]:
    """The options ``obj`` takes: a function's parameters, or a class's ``__init__`` parameters
    followed, where it passes ``**kwargs`` on, by those of the next ``__init__`` up its MRO
    (``SFTModule`` -> ``PolicyModule``), as jsonargparse follows them."""
    if not isinstance(obj, type):
        return [p for p in inspect.signature(obj).parameters.values() if p.kind not in _VARIADIC]
    params: dict[str, inspect.Parameter] = {}
    for klass in obj.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        passes_on = False
        for i, p in enumerate(inspect.signature(klass.__init__).parameters.values()):
            if i == 0:
                continue  # self
            if p.kind is p.VAR_KEYWORD:
                passes_on = True
            elif p.kind is not p.VAR_POSITIONAL:
                params.setdefault(p.name, p)
        if not passes_on:
            break
    return list(params.values())


def resolved_options(obj: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of a class's constructor (or of a function): ``options`` over its defaults,
    option values that are parts resolved (:func:`resolved_part`). Options no signature names are
    kept as given; required options the config leaves out are left out (building the part would
    fail on them anyway)."""
    try:
        params = _parameters(obj)
    except (TypeError, ValueError):
        return {k: jsonable(v) for k, v in sorted(options.items())}
    registries = _registries()
    out: dict[str, Any] = {}
    for param in params:
        name = param.name
        if name in options:
            value = options[name]
        elif param.default is not param.empty:
            value = param.default
        else:
            continue
        nested = registries.get(name)
        # a plain ``str`` option of that name (the reward model's scoring ``backend``) is no part
        if nested is not None and str(param.annotation) not in ("str", "<class 'str'>"):
            out[name] = resolved_part(value, nested)
        else:
            out[name] = jsonable(value)
    for name, value in options.items():
        if name not in out:
            out[name] = jsonable(value)
    return dict(sorted(out.items()))


def resolved_part(spec: Any, registry: Registry[Any] | None = None) -> Any:
    """A part spec (bare name, ``{class_path, init_args}``, :class:`PartSpec`) as ``{"class_path":
    NAME, "init_args": {every option}}``; ``registry`` finds short names (``None``: ``class_path``
    is a dotted path, as in a fit config). Anything else (``None``, a number, an unknown class) is
    returned as JSON data unchanged."""
    if not isinstance(spec, (str, Mapping, PartSpec)):
        return jsonable(spec)
    if isinstance(spec, Mapping) and "class_path" not in spec:
        return jsonable(spec)
    target, options = split_spec(spec)
    if target is None:
        return jsonable(spec)
    cls = _class_of(target, registry)
    if cls is None:
        return jsonable(spec)
    return {"class_path": _name_of(cls, registry), "init_args": resolved_options(cls, options)}


def resolved_fit(fit: Mapping[str, Any]) -> dict[str, Any]:
    """A fit config (LightningCLI's ``model``, ``data``, ``trainer``, ...) with ``model`` and
    ``data`` resolved by their dotted ``class_path``; ``trainer``, ``seed_everything``, ``export``
    and the rest as written. Lightning's own defaults are left out on purpose: Lightning is not
    pinned, and an upgrade should not make every finished stage run again."""
    out = {k: jsonable(v) for k, v in fit.items()}
    for key in ("model", "data"):
        if isinstance(fit.get(key), Mapping):
            out[key] = resolved_part(fit[key])
    return dict(sorted(out.items()))


__all__ = ["jsonable", "resolved_fit", "resolved_options", "resolved_part"]
