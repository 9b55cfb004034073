"""Short messages from the config parser's long ones.

jsonargparse explains a bad setting as a tree: ``Parser key "model": Does not validate against
any of the Union subtypes ... Errors: - Problem with given class_path ...: Parser key "loss":
...`` with every alternative type it tried and the whole value it was given (70-80 lines
through LightningCLI). :func:`condense` keeps the path of keys down to the deepest real cause
and that cause: ``model.init_args.loss: Expected a dot import path string: ariez``.
Imports nothing heavy.
"""

from __future__ import annotations

import re

_KEY = re.compile(r'^Parser key "([^"]+)":\s*(.*)$')
#: lines that describe the tree, not a cause
_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value type:",
    "Given value:",
    "Problem with given class_path",
)
#: causes that only say another alternative of a Union did not match either
_ALTERNATIVE = re.compile(r"^Expected a <class '(NoneType|str|bool|dict|list)'>")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def condense(message: str) -> str:
    """One line for a jsonargparse error message: the dotted key path and the deepest cause.

    Messages that are already one line pass through unchanged (minus PyYAML's
    ``<unicode string>``, which says nothing).
    """
    lines = [line.rstrip() for line in str(message).splitlines() if line.strip()]
    if len(lines) <= 1:
        return _plain(lines[0] if lines else str(message))
    best: tuple[int, int, str, list[str]] | None = None  # (depth, -index, cause, keys)
    fallback: tuple[int, int, str, list[str]] | None = None
    stack: list[tuple[int, str]] = []  # (indent, key) of the open "Parser key" lines
    for i, raw in enumerate(lines):
        indent = _indent(raw)
        text = raw.strip()
        if text.startswith("- "):
            text, indent = text[2:].strip(), indent + 2
        while stack and stack[-1][0] >= indent:
            stack.pop()
        match = _KEY.match(text)
        if match:
            stack.append((indent, match.group(1)))
            text = match.group(2).strip()
            if not text:
                continue
        if text.startswith("Problem with given class_path"):
            stack.append((indent, "init_args"))  # the keys below are the class's init_args
            continue
        if text.startswith(_NOISE):
            continue
        keys = [k for _, k in stack]
        candidate = (len(keys) * 1000 + indent, -i, text, keys)
        if _ALTERNATIVE.match(text):  # only if nothing says more
            if fallback is None or candidate[:2] > fallback[:2]:
                fallback = candidate
        elif best is None or candidate[:2] > best[:2]:
            best = candidate
    best = best or fallback
    if best is None:
        return _plain(lines[0])
    _, _, cause, keys = best
    path = _dotted(keys)
    return _plain(f"{path}: {cause}" if path else cause)


def _dotted(keys: list[str]) -> str:
    """``["model", "init_args", "loss"]`` -> ``model.init_args.loss``; a trailing ``init_args``
    (a class whose own arguments were fine) is dropped."""
    while keys and keys[-1] == "init_args":
        keys = keys[:-1]
    return ".".join(k for i, k in enumerate(keys) if not (k == "init_args" and keys[i - 1 : i] == [k]))


def _plain(text: str) -> str:
    return text.replace('in "<unicode string>", ', "").strip()


__all__ = ["condense"]
