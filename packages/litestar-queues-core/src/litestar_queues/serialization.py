"""Turning task arguments and results into msgspec builtins and back. JSON types only; never pickle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from litestar_queues.errors import SerializationError

__all__ = ("convert_value", "encode_arguments", "encode_result")


def _to_builtins(value: Any, what: str) -> Any:
    try:
        return msgspec.to_builtins(value, builtin_types=None, str_keys=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"{what} ({type(value).__name__}) cannot be encoded as JSON: {exc}. "
            "Pass JSON types, datetimes, UUIDs, msgspec Structs, dataclasses or attrs classes instead."
        ) from exc


def encode_arguments(
    task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Encode call arguments as builtins, naming the argument that cannot be encoded.

    Raises:
        SerializationError: an argument is not msgspec-encodable (the record is not created).
    """
    try:  # one conversion per container; only a failure looks at the arguments one by one to name the culprit
        return (
            msgspec.to_builtins(list(args), builtin_types=None, str_keys=True),
            msgspec.to_builtins(kwargs, builtin_types=None, str_keys=True),
        )
    except (TypeError, ValueError, OverflowError):
        pass
    encoded_args = [
        _to_builtins(value, f"positional argument {index} of task {task_name!r}") for index, value in enumerate(args)
    ]
    encoded_kwargs = {
        name: _to_builtins(value, f"argument {name!r} of task {task_name!r}") for name, value in kwargs.items()
    }
    return encoded_args, encoded_kwargs


def encode_result(task_name: str, value: Any) -> Any:
    """Encode a task's return value as builtins.

    Raises:
        SerializationError: the value is not msgspec-encodable.
    """
    return _to_builtins(value, f"the return value of task {task_name!r}")


def convert_value(value: Any, annotation: Any) -> Any:
    """Convert a stored builtin back to ``annotation`` (lenient: ISO strings become datetimes, dicts Structs...)."""
    return msgspec.convert(value, annotation, strict=False)
