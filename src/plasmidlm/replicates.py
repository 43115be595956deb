"""Replicates and sweeps: how the experiments of the config expand into the experiments that run.

An experiment of the config (a *group*) with `sweep:` becomes one *setting* per combination of the swept
values, each with its overrides set to them; every setting is trained `replicates` times with its own training
seed. Each (setting, replicate) is an experiment of its own, with its own folder under results/<run>/:

- `<group>` for the first replicate of an experiment without a sweep: the names (and the folders, seeds and
  outputs) of a run without replicates and sweeps are those of a run before they existed;
- `<group>.<setting>` for the first replicate of a setting, the setting written as Snakemake's `Paramspace`
  writes one, `key~value` joined by `_` (the last part of a dotted key, e.g. `learning_rate~0.0003_batch_size~64`);
- `.rep<r>` appended for replicate r >= 2 (`random8.rep2`, `random8.learning_rate~0.0003.rep3`).

Names in the config cannot hold `.` or `~` (config.schema.yaml), so a name made here never equals one written
there. The training seed of replicate r is `seed + r - 1` (replicate 1 trains with the run's seed, as before).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from plasmidlm import PlasmidlmError

SECTIONS = ("windows", "model", "train")
VALUE_PATTERN = re.compile(r"^[A-Za-z0-9._+-]+$")


@dataclass(frozen=True)
class Replicate:
    """One experiment that runs: replicate `index` of a `setting` of the config's experiment `group`."""
    group: str
    setting: str  # "" without a sweep, else e.g. "learning_rate~0.0003_batch_size~64"
    values: dict  # the swept keys of the setting and their values, e.g. {"train.learning_rate": 0.0003}
    index: int
    seed: int  # the training seed
    overrides: dict  # the group's windows/model/train overrides with the setting's values set


def replicate_seed(seed: int, index: int) -> int:
    return seed + index - 1


def replicate_name(base: str, index: int) -> str:
    return base if index == 1 else f"{base}.rep{index}"


def format_value(value) -> str:
    """A swept value as it appears in an experiment's name (YAML's spelling of booleans and null)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def sweep_settings(group: str, sweep) -> list[dict]:
    """The settings of a sweep, each {dotted key: value}: every combination of a grid ({key: [values]}, the last
    key varying fastest), or the listed settings ([{key: value}, ...]) in their order."""
    if isinstance(sweep, dict):
        keys = list(sweep)
        settings = [dict(zip(keys, combination)) for combination in itertools.product(*sweep.values())]
    else:
        settings = [dict(setting) for setting in sweep]
    for setting in settings:
        for key in setting:
            if key.split(".")[0] not in SECTIONS or "." not in key:
                raise PlasmidlmError(f"config experiments.{group}.sweep: key {key!r} is not a windows, model or train "
                                     f"key (e.g. train.learning_rate)")
    return settings


def setting_names(group: str, settings: list[dict]) -> list[str]:
    """Each setting as `key~value` pairs joined by `_`; a key by the last part of its dotted name unless two
    swept keys share it."""
    keys = list(dict.fromkeys(key for setting in settings for key in setting))
    last = [key.split(".")[-1] for key in keys]
    short = {key: part if last.count(part) == 1 else key for key, part in zip(keys, last)}
    names = []
    for setting in settings:
        pairs = []
        for key, value in setting.items():
            text = format_value(value)
            if not VALUE_PATTERN.match(text):
                raise PlasmidlmError(f"config experiments.{group}.sweep: value {value!r} of {key} cannot be part of "
                                     f"an experiment name (letters, digits and . _ + - only)")
            pairs.append(f"{short[key]}~{text}")
        names.append("_".join(pairs))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PlasmidlmError(f"config experiments.{group}.sweep: setting(s) listed twice: {', '.join(duplicates)}")
    return names


def with_values(overrides: dict, values: dict) -> dict:
    """The overrides (windows/model/train sections) with each dotted key of `values` set."""
    merged = {section: dict(overrides.get(section) or {}) for section in SECTIONS if section in overrides}
    for key, value in values.items():
        section, *path = key.split(".")
        node = merged.setdefault(section, {})
        for part in path[:-1]:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[path[-1]] = value
    return merged


def expand_experiments(config: dict) -> dict[str, Replicate]:
    """{name: Replicate} of every experiment that runs, group by group in config order, settings in sweep order,
    replicates in order. Stops with an error when there are more than `max_experiments`."""
    # the schema's defaults, for a config that has not been through it (unit tests, an older run's config.yaml)
    seed, replicates = config.get("seed", 1), config.get("replicates", 1)
    expanded = {}
    for group, entry in config["experiments"].items():
        entry = entry or {}
        overrides = {section: entry[section] for section in SECTIONS if section in entry}
        if "sweep" in entry:
            settings = sweep_settings(group, entry["sweep"])
            named = list(zip(setting_names(group, settings), settings))
        else:
            named = [("", {})]
        for setting, values in named:
            base = f"{group}.{setting}" if setting else group
            for index in range(1, entry.get("replicates", replicates) + 1):
                expanded[replicate_name(base, index)] = Replicate(
                    group=group, setting=setting, values=values, index=index,
                    seed=replicate_seed(seed, index), overrides=with_values(overrides, values))
    _check_count(config, expanded)
    return expanded


def _check_count(config: dict, expanded: dict[str, Replicate]) -> None:
    limit = config.get("max_experiments", 50)
    if len(expanded) <= limit:
        return
    counts = {}
    for replicate in expanded.values():
        settings, replicates = counts.get(replicate.group, (set(), 0))
        counts[replicate.group] = (settings | {replicate.setting}, max(replicates, replicate.index))
    parts = ", ".join(f"{group}: {len(settings)} setting(s) x {replicates} replicate(s)"
                      for group, (settings, replicates) in counts.items())
    raise PlasmidlmError(f"config max_experiments: the experiments expand to {len(expanded)} ({parts}), more than "
                         f"max_experiments ({limit}); raise max_experiments to {len(expanded)} if you mean it")


def is_expanded(config: dict) -> bool:
    """Whether any experiment has replicates or a sweep (the comparison table then gets their columns)."""
    return any(replicate.setting or replicate.index > 1 for replicate in expand_experiments(config).values())


def swept_groups(expanded: dict[str, Replicate]) -> list[str]:
    return list(dict.fromkeys(replicate.group for replicate in expanded.values() if replicate.setting))
