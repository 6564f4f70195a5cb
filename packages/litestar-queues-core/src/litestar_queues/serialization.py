"""Turning task arguments and results into msgspec builtins and back. JSON types only; never pickle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from litestar_queues.errors import SerializationError
from litestar_queues.limits import MAX_NESTING, PLAIN_TYPES, check_json_value

__all__ = ("convert_value", "encode_arguments", "encode_result", "encode_value")

_FAILURES = (TypeError, ValueError, OverflowError, RecursionError)


def encode_value(value: Any, what: str) -> Any:
    """Return ``value`` as msgspec builtins (JSON types).

    Raises:
        SerializationError: ``value`` cannot be encoded, or nests too deeply; the message names ``what``.
    """
    try:
        return msgspec.to_builtins(value, builtin_types=None, str_keys=True)
    except RecursionError:
        raise SerializationError(f"{what} is nested deeper than {MAX_NESTING} levels of lists and dicts") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"{what} ({type(value).__name__}) cannot be encoded as JSON: {exc}. "
            "Pass JSON types, datetimes, UUIDs, msgspec Structs, dataclasses or attrs classes instead."
        ) from exc


def encode_arguments(
    task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Encode call arguments as builtins, naming the argument that cannot be encoded.

    The limits of stored values (:func:`~litestar_queues.limits.check_json_value`) are checked when the record
    is made, for every way of enqueueing.

    Raises:
        SerializationError: an argument is not msgspec-encodable (the record is not created).
    """
    if not kwargs:  # the common call of a bulk enqueue: a few plain positional arguments
        for value in args:
            if type(value) not in PLAIN_TYPES:
                break
        else:
            return list(args), {}
    try:  # one conversion per container; only a failure looks at the arguments one by one to name the culprit
        return (
            msgspec.to_builtins(list(args), builtin_types=None, str_keys=True),
            msgspec.to_builtins(kwargs, builtin_types=None, str_keys=True),
        )
    except _FAILURES:
        pass
    encoded_args = [
        encode_value(value, f"positional argument {index} of task {task_name!r}") for index, value in enumerate(args)
    ]
    encoded_kwargs = {
        name: encode_value(value, f"argument {name!r} of task {task_name!r}") for name, value in kwargs.items()
    }
    return encoded_args, encoded_kwargs


def encode_result(task_name: str, value: Any) -> Any:
    """Encode a task's return value as builtins, within the limits of stored values.

    Raises:
        SerializationError: the value is not msgspec-encodable, holds NaN or an infinity, or nests too deeply.
    """
    what = f"the return value of task {task_name!r}"
    encoded = encode_value(value, what)
    check_json_value(encoded, what)
    return encoded


def convert_value(value: Any, annotation: Any) -> Any:
    """Convert a stored builtin back to ``annotation`` (lenient: ISO strings become datetimes, dicts Structs...)."""
    return msgspec.convert(value, annotation, strict=False)
