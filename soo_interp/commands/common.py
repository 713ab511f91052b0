"""Arguments shared by several subcommands, so they read the same everywhere, and the one way a
command line reaches a config: `add_config_args` makes a flag per config field (plus
`--config FILE`), `config_from_args` reads the YAML (or defaults), then the flags given."""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

from ..config import Config

C = TypeVar("C", bound=Config)


def add_model_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--model", default=default, required=default is None,
                   help="hub id, local save_pretrained folder, GGUF file, or a built-in model: "
                        "'organism' (the default, object lookup), 'organism-positional' (the "
                        "shortcut contrast), 'smollm2-135m-instruct' (pretrained, offline)")
    p.add_argument("--gguf-file", default=None,
                   help="with --model FOLDER: the GGUF file in it to load (converted once, cached)")
    p.add_argument("--adapter", default=None, help="peft adapter folder to apply to the model")
    add_placement_args(p)


def add_placement_args(p: argparse.ArgumentParser) -> None:
    """How the model is loaded and placed: dtype, device or device map, quantization."""
    from ..models.placement import QUANTIZATIONS

    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    p.add_argument("--device-map", default=None,
                   help="accelerate device map: auto | balanced | sequential | JSON mapping of "
                        "module names to devices (or a .json file); devices may be cpu or disk")
    p.add_argument("--max-memory", default=None, help="per device, e.g. 0=70GiB,1=70GiB,cpu=200GiB")
    p.add_argument("--offload-folder", default=None, help="folder for layers offloaded to disk")
    p.add_argument("--quantization", default=None, choices=QUANTIZATIONS,
                   help="bitsandbytes quantization (CUDA only; pip install 'soo-interp[quant]')")
    p.add_argument("--load-in-4bit", dest="quantization", action="store_const", const="4bit",
                   help="same as --quantization 4bit (NF4, the paper's setting)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow model code from the hub (off by default)")


def _remote_arg(value: str) -> bool | str:
    """`--remote ndif` (also `true`) or `--remote local`."""
    if value.lower() in ("ndif", "true"):
        return True
    if value.lower() == "local":
        return "local"
    raise argparse.ArgumentTypeError(f"{value!r} is not a remote; choose ndif or local")


def _chat_flag() -> dict[str, Any]:
    """The flag of every config's `chat_template` field: the same on every command."""
    from ..models.tokenize import CHAT_TEMPLATES

    return {"action": "store", "choices": list(CHAT_TEMPLATES),
            "help": "format prompts with the tokenizer's chat template: auto (default: when the "
                    "tokenizer has one), on, off"}


# the flag of a config's `remote` field: --remote (NDIF) or --remote local (offline stand-in)
REMOTE_FLAG = {"action": "store", "nargs": "?", "const": True, "type": _remote_arg,
               "metavar": "{ndif,local}",
               "help": "trace on NDIF through nnsight (needs NDIF_API_KEY; '--remote' alone is "
                       "ndif); '--remote local' runs nnsight's offline stand-in for the remote "
                       "path. The model is named by --model only: --adapter and the loading "
                       "flags (--dtype, --device, ...) are refused with it, and the backend is "
                       "nnsight"}

# loading flags and their defaults: a remote trace cannot apply any other value
_LOAD_DEFAULTS = {"adapter": None, "dtype": "float32", "device": None, "device_map": None,
                  "max_memory": None, "offload_folder": None, "quantization": None,
                  "trust_remote_code": False, "gguf_file": None}


def load_kwargs(args: argparse.Namespace) -> dict:
    """`load_model` keyword arguments from the placement flags (`gguf_file` is None where the
    command has no --gguf-file: sweep takes only the placement flags)."""
    return {k: getattr(args, k, None) for k in ("dtype", "device", "device_map", "max_memory",
                                                "offload_folder", "quantization",
                                                "trust_remote_code", "gguf_file")}


def add_executor_args(p: argparse.ArgumentParser, workers: bool = True) -> None:
    """Where cells run (sweep, search, verdict): the executor and its engine's settings."""
    from ..executors import CLUSTERS, EXECUTORS

    p.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local worker processes (default), a Ray cluster, or submitit (Slurm)")
    if workers:
        p.add_argument("--workers", type=int, default=None,
                       help="cells at once (default 2 local processes; 1 = in this process)")
    p.add_argument("--address", default=None, help="Ray cluster address host:port "
                   "(default: start a local one)")
    p.add_argument("--cluster", default=None, choices=CLUSTERS,
                   help="submitit cluster (default: Slurm when available)")
    p.add_argument("--slurm-partition", default=None, help="Slurm partition for submitit jobs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def executor_from_args(args: argparse.Namespace):
    """The `Executor` the flags of `add_executor_args` describe."""
    from ..executors import Executor

    params = {"slurm_partition": args.slurm_partition} if args.slurm_partition else None
    return Executor(args.executor, args.workers, args.address, args.cluster, params)


def out_path(value: str) -> str:
    """argparse `type` of `--out`: `~` expanded here, since the shell leaves it when quoted."""
    import os

    expanded = os.path.expanduser(value)
    if expanded.startswith("~"):
        raise argparse.ArgumentTypeError(f"cannot expand {value!r} (no home folder known); give "
                                         "the full path")
    return expanded


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars and no closing 'wrote ...' line (errors still print)")


def say(args: argparse.Namespace, message: str) -> None:
    """A command's closing line on stderr, unless `--quiet`."""
    import sys

    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=out_path,
                   help="output folder (refused if it exists; a symlink to a folder is written "
                        "through: the run goes into the folder it points to)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def load_from_args(args: argparse.Namespace):
    from ..models import load_model

    if getattr(args, "remote", None):  # nothing is loaded here but the config and tokenizer
        from ..errors import ConfigError
        from ..models.wrap import remote_model
        from ..tracing.nnsight_backend import check_remote

        given = [k for k, v in _LOAD_DEFAULTS.items() if getattr(args, k, v) != v]
        if getattr(args, "backend", None) not in (None, "nnsight"):
            given.append("backend")
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ConfigError(f"--remote traces the hub model --model names, as it is: it cannot "
                              f"apply {flags}; drop {flags}, or run without --remote")
        check_remote(args.remote)
        return remote_model(args.model, args.remote)
    return load_model(args.model, adapter=args.adapter, **load_kwargs(args))


def int_list_arg(spec: str) -> list[int]:
    """argparse `type` for '1,2,3' / '0-3' lists (read by `config.parse_int_list`)."""
    from ..config import parse_int_list
    from ..errors import ConfigError

    try:
        return sorted(parse_int_list(spec))
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _str_list(spec: str) -> list[str]:
    return [s.strip() for s in spec.split(",") if s.strip()]


def _key_values(item: str) -> tuple[str, str]:
    """argparse `type` of `--NESTED KEY=VALUE`: the pair, the value still text (the config's
    type check reads it, as it reads a flag's)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{item!r} is not KEY=VALUE; write e.g. "
                                         "--env variant=keep_close")
    return key.strip(), value.strip()


def _flag_kwargs(hint: Any) -> dict[str, Any]:
    """argparse keywords for a config field of type `hint` (Optional unwrapped)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    base = typing.get_origin(hint) or hint
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if base is tuple:
        item = typing.get_args(hint)[0]
        return {"type": int_list_arg if item is int else _str_list}
    return {"type": base if base in (int, float) else str}


def _shown(f: dataclasses.Field) -> str:
    """A field's default as a user types it: 'attn,mlp' for a tuple, 'none' for None."""
    value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _nested(cls: type[Config]) -> dict[str, type[Config]]:
    """The fields of `cls` that are configs themselves (e.g. `SweepConfig.train`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and issubclass(hints[f.name], Config)}


def add_config_args(p: argparse.ArgumentParser, cls: type[Config], skip: tuple[str, ...] = (),
                    config_flag: bool = True, prefix: str = "", **fields: dict[str, Any]) -> None:
    """`--config FILE` (unless `config_flag` is False: a second config on the same parser) and
    a flag per field of `cls` (`--batch-size` for `batch_size`); a nested config field gets a
    dotted flag per field of its own (`--train.lr` for `SweepConfig.train.lr`) and
    `--train KEY=VALUE ...` to set several at once. Flags default to None, so a flag overrides
    the YAML only when given; a field listed in `cls.choices` offers those choices. `skip`
    names fields (dotted for nested ones) that get no flag. `fields[name]` adjusts one field's
    flag: `flag` (its name), `aliases` (more names), `help`, `choices`, or any other argparse
    keyword."""
    if config_flag:
        p.add_argument("--config", default=None,
                       help=f"YAML file of {cls.__name__} keys; flags given here override it")
    hints = typing.get_type_hints(cls)
    nested = _nested(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if name in skip:
            continue
        if f.name in nested:
            p.add_argument("--" + name, dest=name, nargs="+", type=_key_values, default=None,
                           metavar="KEY=VALUE", help=f"{nested[f.name].__name__} keys (or "
                           f"--{name}.KEY VALUE, below)")
            add_config_args(p, nested[f.name], skip, False, name + ".", **fields)
            continue
        extra = dict(fields.get(name, _chat_flag() if f.name == "chat_template" else {}))
        flag = extra.pop("flag", "--" + prefix + f.name.replace("_", "-"))
        aliases = extra.pop("aliases", ())
        choices = {"choices": list(cls.choices[f.name])} if f.name in cls.choices \
            and typing.get_origin(hints[f.name]) is not tuple else {}
        kw = {**_flag_kwargs(hints[f.name]), **choices, "dest": name, "default": None,
              "help": f"(default {_shown(f)})", **extra}
        if "action" in extra and extra["action"] != argparse.BooleanOptionalAction \
                and "type" not in extra:
            kw.pop("type", None)
        p.add_argument(flag, *aliases, **kw)


def _flags_given(cls: type[Config], args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """The keys of `cls` set on the command line: `--NESTED KEY=VALUE` pairs first, then the
    (dotted) flags, which win."""
    given: dict[str, Any] = {}
    nested = _nested(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if f.name in nested:
            inner = dict(getattr(args, name, None) or [])
            inner.update(_flags_given(nested[f.name], args, name + "."))
            if inner:
                given[f.name] = inner
        elif getattr(args, name, None) is not None:
            given[f.name] = getattr(args, name)
    return given


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, nested mappings merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def given_values(cls: type[Config], args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the user set: those of the `--config` YAML, then every flag given."""
    data = cls.from_yaml(args.config).to_dict() if getattr(args, "config", None) else {}
    return _merge(data, _flags_given(cls, args))


def config_from_args(cls: type[C], args: argparse.Namespace) -> C:
    """Config `cls` from `--config` YAML (else the defaults), then every flag the user gave."""
    return cls.from_dict(given_values(cls, args))
