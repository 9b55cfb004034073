"""One registry per extension point (losses, generators, selectors, prompt sources, task kinds).

Every registry has the same decorator API::

    from aries_lit.losses import LOSSES

    @LOSSES.register("my_loss")
    class MyLoss(PreferenceLoss): ...

Short names resolve through the registry; any importable class works by its dotted
``class_path``. Short names of user code become known in two ways, neither of which edits this
package: an installed package publishes them in the entry-point group ``aries_lit.<registry
name>`` (e.g. ``[project.entry-points."aries_lit.losses"]``), loaded on a registry's first
lookup; or the environment variable ``ARIES_LIT_PLUGINS=module1,module2`` names modules that
``aries-lit`` imports before it reads a config (:func:`import_plugins`), so their
``@REGISTRY.register`` decorators run. Child processes (``iterate``'s ``fit`` runs) inherit it.

**The spec dialect.** A part is written as LightningCLI writes one, ``{class_path: X, init_args:
{...}}``, where ``X`` is a short registry name (``vllm``, ``verifier``) or a dotted class path; a
part without options may be the bare name (``selector: verifier``); a parsed part is a
:class:`aries_lit.core.part_spec.PartSpec`, which ``build`` takes as it is. The older ``name:`` forms,
``{name: X, init_args: {...}}`` and the flat ``{name: X, option: value, ...}``, are refused with
one line that says how to write them (:func:`aries_lit.core.part_spec.name_form_error`).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from aries_lit.core.errors import SettingsError, UserError
from aries_lit.core.part_spec import PartSpec, refuse_name_form, uses_name_form  # noqa: F401 - importable here too

T = TypeVar("T")


class RegistryError(UserError, KeyError):
    """An unknown name, a duplicate registration or a class of the wrong kind."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def import_object(path: str) -> Any:
    """Import ``package.module.Name`` (or ``package.module:Name``)."""
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise RegistryError(f"'{path}' is not a dotted import path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise RegistryError(f"cannot import module '{module_name}' for '{path}': {err}") from err
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise RegistryError(f"module '{module_name}' has no attribute '{attr}'") from err


#: comma-separated modules that :func:`import_plugins` imports (user parts with short names)
PLUGINS_ENV = "ARIES_LIT_PLUGINS"


def plugin_modules(value: str | None = None) -> list[str]:
    """The module names in ``value`` (default: the ``ARIES_LIT_PLUGINS`` environment variable)."""
    text = os.environ.get(PLUGINS_ENV, "") if value is None else value
    return [name.strip() for name in text.split(",") if name.strip()]


def import_plugins(value: str | None = None) -> list[str]:
    """Import the modules of :func:`plugin_modules` (their ``@REGISTRY.register`` decorators then
    add their short names) and return their names. A module that cannot be imported raises
    :class:`RegistryError` naming the variable and the module."""
    names = plugin_modules(value)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise RegistryError(f"{PLUGINS_ENV}: cannot import module '{name}': {err}") from err
    return names


# --- the spec dialect -------------------------------------------------------------------------


def split_spec(spec: str | Mapping[str, Any] | PartSpec) -> tuple[str | None, dict[str, Any]]:
    """``(target, keyword arguments)`` of a spec: ``X``, ``{class_path: X, init_args: {...}}`` or a
    :class:`PartSpec` (flat options beside ``init_args`` are merged, and win). It also reads the
    flat ``{name: X, option: value}`` records aries_lit writes itself (evaluation's generator
    record, the shape stage keys hash); a user config's ``name:`` form is refused where the
    config is read (:meth:`Registry.build`, :meth:`Registry.check_spec`, :class:`PartSpec`).
    ``{class_path: X, name: Y}`` is refused: it is unclear which part is meant."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, PartSpec):
        return spec.class_path, dict(spec.init_args)
    spec = dict(spec)
    if "class_path" in spec and "name" in spec:
        raise RegistryError(
            f"a spec gives both 'class_path' ({spec['class_path']!r}) and 'name' ({spec['name']!r}); "
            "keep 'class_path' (the 'name' form is no longer read)"
        )
    target = spec.pop("class_path", None) or spec.pop("name", None)
    kwargs = dict(spec.pop("init_args", {}) or {})
    kwargs.update(spec)
    return target, kwargs


def class_path_form(spec: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """The spec in the one dialect: a bare name stays as it is; a mapping becomes
    ``{class_path: X, init_args: {...}}`` (``init_args`` left out when there are no options).
    A mapping without a target is returned as a copy, unchanged."""
    if isinstance(spec, str):
        return spec
    target, kwargs = split_spec(spec)
    if target is None:
        return dict(spec)
    return {"class_path": target, "init_args": kwargs} if kwargs else {"class_path": target}


class Registry(Generic[T]):
    """Maps short names to classes of one kind (``base``)."""

    def __init__(self, name: str, base: type[T]) -> None:
        self.name = name
        self.base = base
        #: what one entry is called in messages ("loss", "selector", ...)
        self.item = {"losses": "loss", "prompt_sources": "prompt_source"}.get(name, name.rstrip("s"))
        self._classes: dict[str, type[T]] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: register ``cls`` under ``name``."""

        def decorator(cls: type[T]) -> type[T]:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise RegistryError(f"{cls!r} is not a subclass of {self.base.__name__}")
            existing = self._classes.get(name)
            if existing is not None and existing is not cls:
                raise RegistryError(
                    f"{self.name} registry: '{name}' is already {existing.__module__}.{existing.__qualname__}"
                )
            self._classes[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"aries_lit.{self.name}"):
            obj = ep.load()
            if isinstance(obj, type) and ep.name not in self._classes:
                self.register(ep.name)(obj)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._classes)

    def name_of(self, cls: type) -> str | None:
        """The first name ``cls`` was registered under (its canonical name), or ``None``."""
        self._load_entry_points()
        return next((name for name, known in self._classes.items() if known is cls), None)

    def get(self, name: str) -> type[T]:
        """The class for a short name or a dotted class path."""
        self._load_entry_points()
        if name in self._classes:
            return self._classes[name]
        if "." in name or ":" in name:
            cls = import_object(name)
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise RegistryError(f"'{name}' is not a subclass of {self.base.__name__}")
            return cls
        raise RegistryError(
            f"unknown {self.item} '{name}'; known: {', '.join(self.names())}, or a dotted class path"
            f" (modules named in {PLUGINS_ENV} add their own names)"
        )

    def build(self, spec: str | Mapping[str, Any] | PartSpec | T, **overrides: Any) -> T:
        """Instantiate from a name, ``{"class_path": ..., "init_args": {...}}``, a :class:`PartSpec`
        or an instance (a ``name:`` form is refused in one line)."""
        if isinstance(spec, self.base):
            return spec
        if isinstance(spec, str):
            return self._instantiate(spec, overrides)
        if isinstance(spec, PartSpec):
            return self._instantiate(spec.class_path, {**spec.init_args, **overrides})
        if isinstance(spec, Mapping):
            refuse_name_form(spec, self.item)
            target, kwargs = self.split_spec(spec)
            if target is None:
                raise RegistryError(f"{self.name} spec needs 'class_path': {kwargs}")
            kwargs.update(overrides)
            return self._instantiate(target, kwargs)
        raise RegistryError(f"cannot build a {self.base.__name__} from {spec!r}")

    def _instantiate(self, target: str, kwargs: dict[str, Any]) -> T:
        """``target``'s class called with ``kwargs``. Options its constructor cannot take (an
        unknown or duplicate keyword, a missing required one) raise :class:`SettingsError` before
        the call; a ``TypeError`` from inside the constructor stays a ``TypeError`` (a bug)."""
        cls = self.get(target)
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):  # no signature to check against (a builtin): call it as it is
            signature = None
        if signature is not None:
            try:
                signature.bind(**kwargs)
            except TypeError as err:
                raise SettingsError(f"{self.item} '{target}': {err}") from None
        return cls(**kwargs)

    @staticmethod
    def split_spec(spec: str | Mapping[str, Any] | PartSpec) -> tuple[str | None, dict[str, Any]]:
        """``(target, keyword arguments)`` of a spec, as :meth:`build` reads it (:func:`split_spec`)."""
        return split_spec(spec)

    def check_spec(self, spec: str | Mapping[str, Any], where: str) -> None:
        """Refuse, without building anything, a spec whose name is unknown or whose keys the
        class does not take: one line naming ``where``, the key and the accepted keys. A ``name:``
        form is refused, naming ``where`` and how to write it."""
        if isinstance(spec, PartSpec):
            spec = spec.config()
        if not isinstance(spec, (str, Mapping)):
            return
        refuse_name_form(spec, where)
        try:
            target, kwargs = self.split_spec(spec)
        except RegistryError as err:
            raise RegistryError(f"{where}: {err}") from None
        if target is None:
            raise RegistryError(f"{where}: a {self.item} spec needs 'class_path'")
        try:
            cls = self.get(target)
        except RegistryError as err:
            raise RegistryError(f"{where}: {err}") from None
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        accepted = [n for n in params if n != "self"]
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise RegistryError(
                f"{where}: {self.item} '{target}' does not take {', '.join(repr(k) for k in unknown)}; "
                f"it takes {', '.join(accepted) or 'no options'}"
            )

    def describe(self) -> list[str]:
        """One line per registered name: the name and its options with their defaults."""
        lines = []
        for name in self.names():
            params = inspect.signature(self._classes[name].__init__).parameters.values()
            options = [
                p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                for p in params
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            lines.append(f"{name}: {', '.join(options) or '(no options)'}")
        return lines

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._classes

    def __repr__(self) -> str:
        return f"Registry({self.name}: {', '.join(self.names())})"
