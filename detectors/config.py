"""Training configuration: defaults < YAML file (or shipped preset) < ``key=value`` overrides.

The configuration is a nested dict of plain values. Every key must exist in
:data:`DEFAULTS`, except the options of the ``model`` section, which are
checked against the chosen detector's constructor (see
:func:`detectors.models.model_options`). Unknown keys are rejected with a
one-line :class:`~detectors.ConfigError` naming the key and the known ones.
"""

from __future__ import annotations

import copy
import math
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._errors import ConfigError

__all__ = ["DEFAULTS", "as_number", "dump_config", "list_presets", "load_config", "parse_overrides"]

DEFAULTS: dict[str, Any] = {
    "seed": 5,
    "run_dir": "runs/default",
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "data": {
        "root": None,  # folder with faketrain/realtrain/fakeval/realval.csv
        "dataset": "ff++",  # group coding of spec section 7
        # csv: fakes from fake*.csv | sbi: each real paired with its self-blended fake
        "fakes": "csv",
        "input_size": None,  # None: the model's own input size
        "batch_size": 16,  # pairs per step and process: 2 x batch_size images
        "num_workers": 4,
        "skip_bad_images": False,
        "augment": {"flip": False, "color": False, "jpeg": False, "blur": False},
        # data.fakes=sbi: the SBI paper's procedure; false / true reproduce the former one
        "sbi": {"post_augment": True, "erode_mask": True, "elastic_source": False},
    },
    "model": {"name": "pgfdd"},  # further keys: the detector's constructor options
    "optim": {
        "base": "sgd",  # sgd | adam | adamw: the optimizer SAM wraps (or that trains alone)
        "sam": True,  # False: plain training with the base optimizer
        "rho": 0.05,
        "adaptive": False,
        "lr": 5e-4,
        "momentum": 0.9,
        "weight_decay": 5e-3,
    },
    "sched": {"step_size": 60, "gamma": 0.9},  # StepLR, stepped once per epoch
    "train": {
        "epochs": 100,
        "amp": "none",  # none | bf16 | fp16 (fp16 is refused with SAM)
        "deterministic": False,
        "progress": True,  # a progress bar within each epoch when stderr is a terminal
        "threads": "auto",  # CPU threads per process: auto | N (see README, "Speed")
        "find_unused_parameters": False,  # DDP option
    },
}

_CHOICES = {
    ("train", "amp"): ("none", "bf16", "fp16"),
    ("optim", "base"): ("sgd", "adam", "adamw"),
    ("data", "fakes"): ("csv", "sbi"),
}

#: keys whose default is ``None`` and the type of their other values
_NULLABLE = {"data.root": str, "data.input_size": int}

#: lower bounds of numeric keys: (minimum, what the message says is expected)
_MINIMA = {
    "seed": (0, "an integer >= 0"),
    "data.input_size": (32, "an integer >= 32"),
    "data.batch_size": (1, "at least 1"),
    "data.num_workers": (0, "an integer >= 0"),
    "optim.rho": (0.0, "a number >= 0"),
    "optim.lr": (1e-300, "a number > 0"),
    "optim.momentum": (0.0, "a number >= 0"),
    "optim.weight_decay": (0.0, "a number >= 0"),
    "sched.step_size": (1, "at least 1"),
    "sched.gamma": (1e-300, "a number > 0"),
    "train.epochs": (1, "at least 1"),
}

_PRESET_PACKAGE = "detectors.presets"


def list_presets() -> list[str]:
    """Names of the shipped presets (``detectors/presets/*.yaml``).

    Examples
    --------
    >>> list_presets()
    ['pgfdd-ff++', 'tiny']
    """
    files = resources.files(_PRESET_PACKAGE).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--config {source}: not valid YAML ({str(exc).splitlines()[0]})"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"--config {source}: expected a mapping of keys, found {type(data).__name__}"
        )
    return data


def _load_source(config: str | Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    path = Path(config)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(
                f"--config {config}: no such file (presets: {', '.join(list_presets())})"
            )
        return _read_yaml(path.read_text(encoding="utf-8"), str(config))
    name = str(config)
    if name not in list_presets():
        raise ConfigError(
            f"--config {config}: neither a YAML file nor a preset (presets: "
            f"{', '.join(list_presets())})"
        )
    text = resources.files(_PRESET_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return _read_yaml(text, name)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=x"]`` into ``{"a": {"b": 1}, "c": "x"}``; values are parsed as YAML.

    Numbers in notations YAML reads as text (``1e-3``) are converted when the configuration
    is checked (:func:`load_config`).

    Examples
    --------
    >>> parse_overrides(["train.epochs=3", "optim.lr=1e-3", "run_dir=RUN"])
    {'train': {'epochs': 3}, 'optim': {'lr': '1e-3'}, 'run_dir': 'RUN'}
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3"
            )
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is both a value and a section")
        node[parts[-1]] = value
    return result


def _merge(
    base: dict[str, Any], update: Mapping[str, Any], prefix: str, open_sections: tuple[str, ...]
) -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str):
            raise ConfigError(f"config key {dotted!r}: keys must be strings")
        if key not in base and prefix.rstrip(".") not in open_sections:
            known = ", ".join(f"{prefix}{k}" for k in base)
            raise ConfigError(f"unknown config key {dotted!r} (known here: {known})")
        if isinstance(base.get(key), dict) and prefix.rstrip(".") not in open_sections:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"config key {dotted!r}: expected a section of keys, found {value!r}"
                )
            _merge(base[key], value, f"{dotted}.", open_sections)
        else:
            base[key] = copy.deepcopy(value)


def as_number(value: Any, integer: bool = False) -> int | float | None:
    """``value`` as a finite number, accepting every notation Python's ``int``/``float`` accept
    in a string (YAML 1.1 reads ``1e-3`` as text); ``None`` when it is not one.

    Examples
    --------
    >>> as_number("1e-3"), as_number("1_000", integer=True), as_number("3.0", integer=True)
    (0.001, 1000, 3)
    >>> as_number("abc"), as_number(2.5, integer=True), as_number(True), as_number("nan")
    (None, None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text, 0)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, int):
        return value
    if not isinstance(value, float) or not math.isfinite(value):
        return None
    if integer:
        return int(value) if value.is_integer() else None
    return value


def _check_leaf(dotted: str, value: Any, default: Any) -> tuple[Any, str | None]:
    """``(coerced value, error or None)`` of one key against its default's type."""
    kind = _NULLABLE.get(dotted, type(default))
    if value is None and (dotted in _NULLABLE or default is None):
        return None, None
    if dotted == "train.threads":
        number = as_number(value, integer=True)
        if value == "auto" or (number is not None and number >= 1):
            return (value if value == "auto" else number), None
        return (
            value,
            f"config key 'train.threads': expected auto or an integer >= 1, found {value!r}",
        )
    if kind is bool:
        if isinstance(value, bool):
            return value, None
        return value, f"config key {dotted!r}: expected true or false, found {value!r}"
    if kind in (int, float):
        number = as_number(value, integer=kind is int)
        if number is None:
            what = "an integer" if kind is int and as_number(value) is not None else "a number"
            return value, f"config key {dotted!r}: expected {what}, found {value!r}"
        low = _MINIMA.get(dotted)
        if low is not None and number < low[0]:
            return value, f"config key {dotted!r}: expected {low[1]}, found {value!r}"
        return (float(number) if kind is float else number), None
    if kind is str:
        if not isinstance(value, str):
            return value, f"config key {dotted!r}: expected a string, found {value!r}"
        choices = _CHOICES.get(tuple(dotted.split(".")))
        if choices and value not in choices:
            return value, (
                f"config key {dotted!r}: expected one of {', '.join(choices)}, found {value!r}"
            )
    return value, None


def _check_types(cfg: dict[str, Any]) -> None:
    """Check (and coerce) every key against its default's type; all errors at once, one line
    each."""
    errors: list[str] = []

    def walk(defaults: Mapping[str, Any], values: dict[str, Any], prefix: str) -> None:
        for key, default in defaults.items():
            dotted = f"{prefix}{key}"
            if isinstance(default, dict):
                if dotted != "model":
                    walk(default, values[key], f"{dotted}.")
                continue
            values[key], error = _check_leaf(dotted, values[key], default)
            if error:
                errors.append(error)

    walk(DEFAULTS, cfg, "")
    if not isinstance(cfg["model"].get("name"), str):
        errors.append(
            f"config key 'model.name': expected a detector name, found {cfg['model'].get('name')!r}"
        )
    if cfg["optim"]["sam"] is True and cfg["train"]["amp"] == "fp16":
        errors.append(
            "train.amp=fp16 cannot be combined with optim.sam=true (a GradScaler cannot "
            "unscale the two SAM passes safely); use train.amp=bf16 or train.amp=none"
        )
    if errors:
        raise ConfigError("\n".join(errors))


def load_config(
    config: str | Path | None = None, overrides: list[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Resolve the configuration: defaults < file or preset < overrides.

    Parameters
    ----------
    config : str or Path or None
        A YAML file or the name of a shipped preset (see :func:`list_presets`).
    overrides : list of str or mapping
        ``KEY=VALUE`` strings with dotted keys (values parsed as YAML), or a nested mapping.

    Returns
    -------
    dict
        The resolved configuration, every key checked against the type of its default
        (numbers in any notation Python accepts). Model options are checked against the
        detector's constructor by :func:`detectors.models.check_model_config`.

    Raises
    ------
    ConfigError
        One line per problem.

    Examples
    --------
    >>> cfg = load_config("tiny", ["optim.lr=1e-3", "train.epochs=8"])
    >>> cfg["optim"]["lr"], cfg["train"]["epochs"], cfg["model"]["name"]
    (0.001, 8, 'pgfdd')
    >>> load_config("tiny", ["data.input_size=abc", "run_dir=5"])
    Traceback (most recent call last):
    ...
    detectors._errors.ConfigError: config key 'run_dir': expected a string, found 5
    config key 'data.input_size': expected a number, found 'abc'
    """
    cfg = copy.deepcopy(DEFAULTS)
    source = _load_source(config)
    if "model" in source and "name" not in source["model"]:
        source["model"]["name"] = DEFAULTS["model"]["name"]
    _merge(cfg, source, "", open_sections=("model",))
    extra = (
        parse_overrides(list(overrides)) if not isinstance(overrides, Mapping) else dict(overrides)
    )
    if (
        "model" in extra
        and "name" in extra["model"]
        and extra["model"]["name"] != cfg["model"]["name"]
    ):
        cfg["model"] = {}  # switching detectors drops the preset's detector options
    _merge(cfg, extra, "", open_sections=("model",))
    _check_types(cfg)
    return cfg


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The configuration as YAML text (key order kept).

    Examples
    --------
    >>> print(dump_config({"seed": 5, "train": {"epochs": 3}}), end="")
    seed: 5
    train:
      epochs: 3
    """
    return yaml.safe_dump(dict(cfg), sort_keys=False)
