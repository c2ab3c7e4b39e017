"""Training configuration: defaults < YAML file (or shipped preset) < ``key=value`` overrides.

The configuration is a nested dict of plain values. Every key must exist in
:data:`DEFAULTS`, except the options of the ``model`` section, which are
checked against the chosen detector's constructor (see
:func:`detectors.models.model_options`). Unknown keys are rejected with a
one-line :class:`~detectors.ConfigError` naming the key and the known ones.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from ._errors import ConfigError

__all__ = ["DEFAULTS", "list_presets", "load_config", "parse_overrides", "dump_config"]

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
        "progress": True,
        "find_unused_parameters": False,  # DDP option
    },
}

_CHOICES = {
    ("train", "amp"): ("none", "bf16", "fp16"),
    ("optim", "base"): ("sgd", "adam", "adamw"),
    ("data", "fakes"): ("csv", "sbi"),
}

_PRESET_PACKAGE = "detectors.presets"


def list_presets() -> list[str]:
    """Names of the shipped presets (``detectors/presets/*.yaml``)."""
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
    """Turn ``["a.b=1", "c=x"]`` into ``{"a": {"b": 1}, "c": "x"}``; values are parsed as YAML."""
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


def _check_types(cfg: dict[str, Any]) -> None:
    def walk(defaults: Mapping[str, Any], values: Mapping[str, Any], prefix: str) -> None:
        for key, default in defaults.items():
            value = values[key]
            dotted = f"{prefix}{key}"
            if isinstance(default, dict):
                if dotted != "model":
                    walk(default, value, f"{dotted}.")
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(
                        f"config key {dotted!r}: expected true or false, found {value!r}"
                    )
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"config key {dotted!r}: expected a number, found {value!r}")
                if isinstance(default, int) and not isinstance(value, int):
                    raise ConfigError(
                        f"config key {dotted!r}: expected an integer, found {value!r}"
                    )
            choices = _CHOICES.get(tuple(dotted.split(".")))
            if choices and value not in choices:
                raise ConfigError(
                    f"config key {dotted!r}: expected one of {', '.join(choices)}, found {value!r}"
                )

    walk(DEFAULTS, cfg, "")
    if cfg["train"]["epochs"] < 1:
        raise ConfigError(
            f"config key 'train.epochs': expected at least 1, found {cfg['train']['epochs']}"
        )
    if cfg["data"]["batch_size"] < 1:
        raise ConfigError(
            f"config key 'data.batch_size': expected at least 1, found {cfg['data']['batch_size']}"
        )
    if not isinstance(cfg["model"].get("name"), str):
        raise ConfigError(
            f"config key 'model.name': expected a detector name, found {cfg['model'].get('name')!r}"
        )
    if cfg["optim"]["sam"] and cfg["train"]["amp"] == "fp16":
        raise ConfigError(
            "train.amp=fp16 cannot be combined with optim.sam=true (a GradScaler cannot "
            "unscale the two SAM passes safely); use train.amp=bf16 or train.amp=none"
        )


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
        The resolved configuration. Model options are validated later, when the
        detector is known (:func:`detectors.models.model_options`).
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
    """The configuration as YAML text (key order kept)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)
