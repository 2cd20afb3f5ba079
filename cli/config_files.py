"""Recipes as TOML files: ``--config FILE`` of ``train.py``, ``valid.py`` and ``infer.py``.

A file's top-level keys are flags, written as on the command line without the leading ``--``
(``crop_size = 768``, ``contrast_max_view = 50``, ``local-rank = 0``); ``base = ["a.toml", ...]``
names files it inherits from, relative to the file itself. The files are applied in order,
each once: the bases of a file (depth first, later bases win), then the file itself; several
``--config`` options are applied left to right; flags written on the command line win over
every file. The merged settings become ordinary flags placed before the command line, so
each value goes through the same argparse conversion and the same checks as the flag
(docs/CONFIGS.md). Generic over the parser: a flag added to it is a valid key at once.
"""

import os
import tomllib
from argparse import ArgumentError, Namespace
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path

BASE_KEY = "base"      # the one key that is not a flag
CONFIG_FLAG = "config"  # --config FILE; a file names its parents with ``base`` instead


class ConfigError(ValueError):
    """A config file that cannot be read or applied; the message names the file and key."""


@dataclass(frozen=True)
class Setting:
    """One flag value and where it was set."""

    value: object
    file: str
    key: str


def add_config_flag(parser):
    """``--config FILE`` (repeatable) on ``parser``."""
    parser.add_argument(f"--{CONFIG_FLAG}", action="append", metavar="FILE", default=None,
                        help="TOML recipe whose keys are flags (configs/*.toml, "
                             "docs/CONFIGS.md); repeatable, later files and then the "
                             "command line win")


def expand_argv(parser, argv):
    """``(config_argv + argv, files)``: the settings of every ``--config`` file in ``argv``
    as flags placed before ``argv`` (so the command line wins), and the files read (bases
    included, in the order applied). Raises :class:`ConfigError`."""
    given = parser.parse_known_args(argv)[0].config or []
    if not given:
        return list(argv), []
    settings, files = read_configs(given, parser)
    return settings_argv(settings, parser) + list(argv), files


def read_configs(paths, parser):
    """Merge the files ``paths`` (with their bases) into ``{dest: Setting}``; every value is
    checked against ``parser`` as it is read. Returns ``(settings, files read)``."""
    flags = flag_actions(parser)
    order = []
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"--config: no such file: {path}")
        _linearize(str(path), [], order, {})
    settings = {}
    for shown, table in order:
        settings.update(_file_settings(shown, table, flags, parser))
    return settings, [shown for shown, _ in order]


def _linearize(shown, stack, order, done):
    """Append ``(shown path, table)`` of ``shown``'s bases, then of ``shown``, to ``order``
    (depth first, each file once); ``stack``: the files being read (a cycle check)."""
    real = os.path.realpath(shown)
    if real in done:
        return
    if real in [os.path.realpath(s) for s in stack]:
        chain = " -> ".join([*stack[[os.path.realpath(s) for s in stack].index(real):], shown])
        raise ConfigError(f"{stack[-1]}: {BASE_KEY}: inheritance cycle: {chain}")
    table = _read_toml(shown)
    for base in _bases(shown, table):
        _linearize(base, [*stack, shown], order, done)
    done[real] = True
    order.append((shown, table))


def _read_toml(shown):
    try:
        with open(shown, "rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot be read: {exc.strerror or exc}") from None


def _bases(shown, table):
    """The files ``base`` names, as paths relative to ``shown``'s folder."""
    bases = table.get(BASE_KEY, [])
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f'{shown}: {BASE_KEY} must be a list of file names, e.g. '
                          f'{BASE_KEY} = ["_base/r50os16.toml"], got {bases!r}')
    folder = os.path.dirname(shown)
    paths = [os.path.normpath(os.path.join(folder, base)) for base in bases]
    for base, path in zip(bases, paths):
        if not os.path.isfile(path):
            raise ConfigError(f"{shown}: {BASE_KEY}: no such file: {base} ({path})")
    return paths


def flag_actions(parser):
    """Key -> argparse action: each long option without ``--`` and each dest."""
    keys = {}
    for action in parser._actions:  # argparse keeps no public list of its actions
        if action.dest in ("help", CONFIG_FLAG):
            continue
        keys[action.dest] = action
        keys.update({opt[2:]: action for opt in action.option_strings if opt.startswith("--")})
    return keys


def _file_settings(shown, table, flags, parser):
    """``{dest: Setting}`` of one file's own keys, each checked through ``parser``."""
    settings = {}
    for key, value in table.items():
        if key == BASE_KEY:
            continue
        if key == CONFIG_FLAG:
            raise ConfigError(f'{shown}: {key}: a file names the files it inherits from with '
                              f'{BASE_KEY} = ["..."], not {CONFIG_FLAG}')
        if isinstance(value, dict):
            raise ConfigError(f"{shown}: [{key}]: tables are not read; write the flags as "
                              f"top-level keys (before any [table] line)")
        if key not in flags:
            close = get_close_matches(key, list(flags), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{shown}: unknown key {key!r}: not a flag of {parser.prog}{hint}")
        action = flags[key]
        if action.dest in settings:
            raise ConfigError(f"{shown}: {settings[action.dest].key} and {key} set the same "
                              f"flag --{action.dest}; keep one")
        _check(parser, action_argv(action, value, f"{shown}: {key}"), f"{shown}: {key}")
        settings[action.dest] = Setting(value, shown, key)
    return settings


def action_argv(action, value, where):
    """The command-line words that set ``action`` to the TOML ``value`` ([] for a switch left
    at its default). Raises :class:`ConfigError` naming ``where`` for a value of the wrong
    shape (the value's own conversion is argparse's)."""
    flag = f"--{action.dest}" if f"--{action.dest}" in action.option_strings \
        else action.option_strings[0]
    if action.nargs == 0:  # store_true / store_false / store_const: a switch
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false (a switch), got {value!r}")
        if value == action.const:
            return [flag]
        if value == action.default:
            return []
        raise ConfigError(f"{where}: {flag} can only be switched to {action.const!r}")
    many = action.nargs not in (None, "?")
    if isinstance(value, list) != many:
        raise ConfigError(f"{where}: expected {'a list' if many else 'one value, not a list'} "
                          f"(as {flag} takes {'several values' if many else 'one'}), "
                          f"got {value!r}")
    words = [_word(item, where) for item in (value if many else [value])]
    return [flag, *words] if many else [f"{flag}={words[0]}"]


def _word(item, where):
    """A TOML scalar as a command-line word; booleans, tables and dates are refused."""
    if isinstance(item, bool) or not isinstance(item, (str, int, float)):
        raise ConfigError(f"{where}: expected a string or a number, got {item!r}")
    return str(item)  # repr of a float round-trips exactly


def _check(parser, words, where):
    """Parse ``words`` alone: argparse's type and choice checks, reported with ``where``."""
    exit_on_error, parser.exit_on_error = parser.exit_on_error, False
    try:
        parser.parse_known_args(words, Namespace())
    except ArgumentError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    finally:
        parser.exit_on_error = exit_on_error


def settings_argv(settings, parser):
    """The merged ``{dest: Setting}`` as one list of command-line words."""
    flags = flag_actions(parser)
    words = []
    for dest, setting in settings.items():
        words += action_argv(flags[dest], setting.value, f"{setting.file}: {setting.key}")
    return words
