"""The declarative input model: the base of every configuration file's and message's model.

Models are pydantic v2 models, frozen and with extra fields forbidden. Scalars use the field
types below, whose validators word errors the way securecalc always has ("must be a
non-empty string, got ''"); :func:`validate` turns pydantic's ValidationError into a
:class:`ConfigError` naming the file and the field (``party[0].address``). pydantic's own
messages and its echo of the input never reach the error, so an error about a job received
off the wire carries only the texts written here.

Import cost, measured on the 2-core development machine: ``python -X importtime -c "import
pydantic"`` reports 25 to 45 ms (pydantic imports lazily); importing ``BaseModel`` and the
validators used here costs about 90 ms over a bare interpreter (best of 5), and importing
:mod:`securecalc.core.config` with :mod:`securecalc.transport.codec` went from about 300 to
385 ms. Keep models import-light: only pydantic's core API (no ``pydantic.v1``, no e-mail or
network types), and nothing imported here that the models do not need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from securecalc.core.limits import NAME_CHARS
from securecalc.errors import ConfigError

M = TypeVar("M", bound="Model")

_ERROR = "securecalc"


class Model(BaseModel):
    """Frozen, no unknown keys, no coercion: the base of every input model."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              arbitrary_types_allowed=True)


def invalid(message: str, *, at: tuple[str | int, ...] = (), root: bool = False
            ) -> PydanticCustomError:
    """A validation error with ``message``; ``at`` names a field below the one validated,
    ``root``: the error names the file only (no field)."""
    return PydanticCustomError(_ERROR, "{message}", {"message": message, "at": at, "root": root})


def validate(model: type[M], data: Any, *, path: str | None = None,
             context: Mapping[str, Any] | None = None, prefix: tuple[str | int, ...] = ()) -> M:
    """``model`` validated from ``data``; a ConfigError naming ``path`` and the field at
    fault otherwise (``prefix`` is prepended to the field, e.g. ``("policy",)``)."""
    try:
        return model.model_validate(data, context={"path": path, **(context or {})})
    except ValidationError as exc:
        raise _config_error(model, _first(exc), path, prefix) from None


def _first(exc: ValidationError) -> Any:
    """The error to report: the first, unless a table holding it has an unknown key (a
    misspelt key is reported rather than the field it left missing)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    for error in errors:
        table = tuple(error["loc"][:-1])
        if error["type"] == "extra_forbidden" and tuple(first["loc"][:len(table)]) == table:
            return error
    return first


def _config_error(model: type[Model], error: Any, path: str | None,
                  prefix: tuple[str | int, ...]) -> ConfigError:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == _ERROR:
        raised = ctx.get("error")
        if isinstance(raised, ConfigError):
            return raised  # raised with its own file and field by shared code
        if ctx.get("root"):
            return ConfigError(ctx["message"], path=path)
        return ConfigError(ctx["message"], path=path,
                           field=field_name((*prefix, *loc, *ctx.get("at", ()))))
    if kind == "missing":
        target = _annotation_at(model, loc)
        if isinstance(target, type) and issubclass(target, Model) and not prefix \
                and len(loc) == 1:
            return ConfigError(f"missing table [{loc[0]}]", path=path)
        return ConfigError("is required", path=path, field=field_name((*prefix, *loc)))
    if kind == "extra_forbidden":
        owner = _annotation_at(model, loc[:-1])
        allowed = sorted(info.alias or name for name, info in owner.model_fields.items()) \
            if isinstance(owner, type) and issubclass(owner, BaseModel) else []
        return ConfigError(f"unknown key (allowed: {', '.join(allowed)})", path=path,
                           field=field_name((*prefix, *loc)))
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return ConfigError("must be a table", path=path, field=field_name((*prefix, *loc)))
    if kind in ("list_type", "tuple_type"):
        return ConfigError("must be a list", path=path, field=field_name((*prefix, *loc)))
    return ConfigError(f"is not valid ({kind})", path=path, field=field_name((*prefix, *loc)))


def _annotation_at(model: type[Model], loc: tuple[str | int, ...]) -> Any:
    """The model class or type expected at ``loc`` below ``model`` (None if unknown)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            args = [a for a in get_args(current) if a is not Ellipsis]
            current = args[0] if args else None
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = next((f for n, f in current.model_fields.items() if (f.alias or n) == part),
                    None)
        if info is None:
            return None
        current = info.annotation
        while get_origin(current) is not None and get_origin(current) not in (list, tuple):
            args = [a for a in get_args(current) if a is not type(None)]
            current = args[0] if args else None
    return current


def field_name(loc: Iterable[str | int]) -> str | None:
    """``("party", 0, "address")`` as ``party[0].address``; None for the file itself."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def collected(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` with the ConfigErrors it raises (already naming their file and field)
    collected like any validation error, so that errors are reported in field order."""
    takes_info = check.__code__.co_argcount == 2

    def run(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info) if takes_info else check(value)
        except ConfigError as exc:
            raise PydanticCustomError(_ERROR, "{message}",
                                      {"message": str(exc), "error": exc}) from None

    return run


def checked(check: Callable[..., Any]) -> PlainValidator:
    """A field validator from ``check(value)`` or ``check(value, info)``."""
    return PlainValidator(collected(check))


def config_path(info: ValidationInfo) -> str | None:
    """The file being validated (None for a job off the wire)."""
    return (info.context or {}).get("path")


# -- field types ---------------------------------------------------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"must be a non-empty string, got {value!r}")
    return value


def _name(value: Any) -> str:
    text = _text(value)
    if len(text) > NAME_CHARS.value:
        raise invalid(NAME_CHARS.message(len(text)))
    return text


def as_names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple | set | frozenset) \
            or not all(isinstance(v, str) and v for v in value):
        raise invalid("must be a list of names")
    return tuple(value)


def address_problem(address: str) -> str | None:
    """Why ``address`` is not ``host:port`` with a port in 0..65535, or None."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        return f"address must be host:port, got {address!r}"
    return None


def _address(value: Any) -> str:
    text = _name(value)
    problem = address_problem(text)
    if problem:
        raise invalid(problem)
    return text


def _positive(value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            or not math.isfinite(value)):
        raise invalid(f"must be a positive number, got {value!r}")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid("must be true or false")
    return value


def whole(low: int, high: int | None = None) -> PlainValidator:
    """A whole number ``>= low`` (and ``<= high``)."""
    wanted = f">= {low}" if high is None else None

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low \
                or (high is not None and value > high):
            text = wanted or f"from {low} to {high}"
            raise invalid(f"must be a whole number {text}, got {value!r}")
        return value

    return PlainValidator(check)


def _path(value: Any, info: ValidationInfo) -> Path:
    """A path relative to the directory of the file being read."""
    if isinstance(value, Path):
        return value
    text = _text(value)
    base = Path(config_path(info) or ".").parent
    try:
        return (base / text).resolve()
    except (ValueError, OSError, RuntimeError) as exc:  # a NUL byte, a symlink loop
        raise invalid(f"is not a usable path ({exc})") from None


Text = Annotated[str, PlainValidator(_text)]
Name = Annotated[str, PlainValidator(_name)]
Names = Annotated[tuple[str, ...], PlainValidator(as_names)]
Address = Annotated[str, PlainValidator(_address)]
PositiveNumber = Annotated[float, PlainValidator(_positive)]
Flag = Annotated[bool, PlainValidator(_flag)]
AtLeastOne = Annotated[int, whole(1)]
FilePath = Annotated[Path, PlainValidator(_path)]
