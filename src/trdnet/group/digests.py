"""One set of settings per group step: runs processed with different settings are never pooled.

Jobs of a cluster array, or two processes on one output folder, may finish
runs with different settings; each run's completion record keeps its
settings digest. The group step refuses a mixture, naming the digests, a few
runs of each and the settings that differ (read from the runs' sidecars), or
keeps the runs of one digest the user chose.
"""

from __future__ import annotations

import json
from collections import defaultdict

from ..errors import SettingsError

#: Runs and differing settings named in the refusal before it is shortened.
SHOWN = 3


def _flatten(values, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _recorded_settings(record) -> dict:
    """The settings written in a run's networks sidecar (flattened), or {} if unreadable."""
    table = record.files.get("networks")
    if table is None:
        return {}
    try:
        content = json.loads(table.with_name(table.name.replace(".tsv", ".json")).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    settings = content.get("Settings") if isinstance(content, dict) else None
    return _flatten(settings) if isinstance(settings, dict) else {}


def _differences(by_digest: dict) -> str:
    return settings_differences([_recorded_settings(runs[0]) for runs in by_digest.values()])


def settings_differences(recorded: list[dict]) -> str:
    """The settings that differ between sets of settings, in words: ``they differ in key (a vs b), ...``.

    Parameters
    ----------
    recorded : list of dict
        Settings as sidecars record them (:meth:`trdnet.config.Settings.to_dict`, nested or flattened), in the
        order their values are shown.

    Returns
    -------
    str
        At most :data:`SHOWN` keys, then how many more; a sentence saying the settings are the same when none
        differs, or that they are not named when a set is empty (its sidecar is missing).
    """
    recorded = [_flatten(r) for r in recorded]
    if any(not r for r in recorded):
        return "the settings that differ are not named: a sidecar that records them is missing"
    keys = sorted({k for r in recorded for k in r})
    differing = [k for k in keys if len({json.dumps(r.get(k), sort_keys=True) for r in recorded}) > 1]
    if not differing:
        return "their sidecars record the same settings (the digest also covers inputs such as an ROI labels table)"
    shown = [f"{k} ({' vs '.join(json.dumps(r.get(k)) for r in recorded)})" for k in differing[:SHOWN]]
    more = f" and {len(differing) - SHOWN} more" if len(differing) > SHOWN else ""
    return f"they differ in {', '.join(shown)}{more}"


def _runs_of(runs) -> str:
    names = [r.prefix for r in runs[:SHOWN]]
    more = f" and {len(runs) - SHOWN} more" if len(runs) > SHOWN else ""
    return f"{len(runs)} run(s): {', '.join(names)}{more}"


def select_settings_digest(records, out_dir, digest: str | None = None, action: str = "pooled",
                           step: str = "the group step"):
    """Keep the runs of one settings digest, refusing a mixture nobody chose.

    Parameters
    ----------
    records : list of trdnet.group.collect.RunRecord
        Finished runs, each with its ``settings_digest``.
    out_dir : Path
        Named in the messages.
    digest : str, optional
        The digest to keep (``--settings-digest``); runs of other digests
        become exclusions.
    action : str
        What a mixture cannot be, in the refusal ("pooled", "exported together").
    step : str
        What keeps the chosen digest, in the exclusion reasons.

    Returns
    -------
    kept : list of RunRecord
    excluded : list of dict
        ``participant_id``, ``run``, ``reason`` of the runs of other digests.

    Raises
    ------
    SettingsError
        With two or more digests and none chosen (naming each digest, some of
        its runs and the settings that differ), or a chosen digest no finished
        run has.
    """
    by_digest = defaultdict(list)
    for record in records:
        by_digest[record.settings_digest or "unknown"].append(record)
    if digest is None:
        if len(by_digest) < 2:
            return list(records), []
        listed = "; ".join(f"digest {d}: {_runs_of(runs)}" for d, runs in sorted(by_digest.items()))
        raise SettingsError(
            f"{out_dir}: finished runs were processed with {len(by_digest)} different settings and cannot be {action} "
            f"({listed}); {_differences(dict(sorted(by_digest.items())))}; re-run them with one set of settings "
            "(--overwrite), or keep one with --settings-digest DIGEST")
    if digest not in by_digest:
        raise SettingsError(f"--settings-digest {digest}: no finished run in {out_dir} has it; present: "
                            f"{', '.join(sorted(by_digest))}")
    excluded = [{"participant_id": r.participant_id, "run": r.prefix,
                 "reason": f"processed with other settings (digest {d}; {step} keeps {digest})"}
                for d, runs in sorted(by_digest.items()) if d != digest for r in runs]
    return by_digest[digest], excluded
