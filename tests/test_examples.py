"""Every tutorial in ``examples/`` runs to completion in fast mode and writes its figures and the outputs
it teaches (checked by reading them, not by the example's printed words)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import nibabel as nib
import pandas as pd
import pytest

import forked

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))

# Figures each example must leave in its output folder.
FIGURES = {
    "01_quickstart.py": ["targets_vs_truth.png"],
    "02_networks.py": ["network_timeseries.png", "network_connectivity.png", "network_graph.png"],
    "03_personalised_target.py": ["seed_map_targets.png", "bootstrap_targets.png"],
    "04_export_for_navigation.py": ["target_on_t1w.png"],
    "05_your_own_data.py": [],
    "06_cohort_on_dask.py": ["cohort_targets.png"],
    "07_real_parcellated_scan.py": ["raw_vs_cleaned_networks.png", "parcel_matrix.png"],
    "08_surface_real_scan.py": ["surface_networks.png", "surface_seed_map.png"],
}



def _files(folder: Path, pattern: str) -> list[Path]:
    found = sorted(folder.glob(pattern))
    assert found, f"{folder.name}: nothing matches {pattern}"
    return found


def _targets_tables(folder: Path) -> list[Path]:
    return [p for p in _files(folder, "trdnet/sub-*/func/*_targets.tsv") if "_desc-" not in p.name]


def _personalised(table_path: Path) -> pd.Series:
    table = pd.read_csv(table_path, sep="\t")
    return table[table["target"] == "personalised"].iloc[0]


def _quickstart(folder: Path) -> None:
    tables = _targets_tables(folder)
    assert len(tables) == 2  # two participants in fast mode
    for path in tables:
        row = _personalised(path)
        assert row["space"] == "MNI152NLin2009cAsym" and row["x"] < 0  # a left-DLPFC target


def _networks(folder: Path) -> None:
    table = pd.read_csv(_files(folder, "trdnet/sub-*/func/*_networks.tsv")[0], sep="\t")
    assert {tuple(sorted(p)) for p in zip(table["network_a"], table["network_b"])} == {
        ("DMN", "DMN"), ("DMN", "SN"), ("DMN", "ECN"), ("SN", "SN"), ("ECN", "SN"), ("ECN", "ECN")}
    relmat = pd.read_csv(_files(folder, "trdnet/sub-*/func/*_relmat.tsv")[0], sep="\t")
    assert relmat.shape[0] == relmat.shape[1] > 2


def _navigation(folder: Path) -> None:
    coords = pd.read_csv(_files(folder, "navigation/native/*_desc-navtargets_coords.tsv")[0], sep="\t")
    assert set(coords["space"]) == {"T1w"}
    brainsight = _files(folder, "navigation/native/*_brainsight.txt")[0].read_text()
    assert "# Coordinate system: NIfTI:" in brainsight
    markers = ElementTree.parse(_files(folder, "navigation/native/*_localiteInstrumentMarker.xml")[0]).getroot()
    assert markers.tag == "InstrumentMarkerList" and markers.get("coordinateSpace") == "RAS"
    entries = ElementTree.parse(_files(folder, "navigation/native/*_localiteEntryTarget.xml")[0]).getroot()
    assert entries.tag == "EntryTargetList" and entries.get("coordinateSpace") == "RAS"
    template = pd.read_csv(_files(folder, "navigation/template/*_coords.tsv")[0], sep="\t")
    assert set(template["space"]) == {"MNI152NLin2009cAsym"}


def _own_data(folder: Path) -> None:
    assert len(_targets_tables(folder)) == 1
    assert json.loads((folder / "trdnet" / "dataset_description.json").read_text())["Simulated"] is True
    assert len(_files(folder, "trdnet/logs/*_done.json")) == 1


def _within_exceeds_between(networks_tsv: Path) -> None:
    """Each of DMN, SN and ECN is more connected within itself than with any other network."""
    table = pd.read_csv(networks_tsv, sep="\t")
    for network in ("DMN", "SN", "ECN"):
        within = table[(table["network_a"] == network) & (table["network_b"] == network)]["mean_z"].iloc[0]
        between = table[(table["network_a"] != table["network_b"])
                        & ((table["network_a"] == network) | (table["network_b"] == network))]["mean_z"]
        assert within > between.max(), (networks_tsv.name, network)


def _real_parcels(folder: Path) -> None:
    _within_exceeds_between(_files(folder, "trdnet/**/*_networks.tsv")[0])
    assert _files(folder, "trdnet_nogsr/**/*_networks.tsv")  # the comparison without GSR was written too


def _real_surface(folder: Path) -> None:
    _within_exceeds_between(_files(folder, "trdnet/**/*_networks.tsv")[0])
    seed_map = nib.load(_files(folder, "trdnet/**/*_hemi-L_*_boldmap.func.gii")[0]).darrays[0].data
    assert seed_map.shape == (10242,)  # one value per fsaverage5 vertex of the left hemisphere


def _cohort(folder: Path) -> None:
    group = folder / "trdnet" / "group"
    assert len(pd.read_csv(group / "targets.tsv", sep="\t")["participant_id"].unique()) == 4
    assert len(pd.read_csv(group / "networks.tsv", sep="\t")) > 0
    assert not (folder / "trdnet" / "failures.tsv").exists()


# What each example must have written besides its figures (fast mode).
WRITES = {
    "01_quickstart.py": _quickstart,
    "02_networks.py": _networks,
    "03_personalised_target.py": lambda folder: None,  # an in-memory walk-through: its figures are its output
    "04_export_for_navigation.py": _navigation,
    "05_your_own_data.py": _own_data,
    "06_cohort_on_dask.py": _cohort,
    "07_real_parcellated_scan.py": _real_parcels,
    "08_surface_real_scan.py": _real_surface,
}


def test_every_example_is_listed():
    assert SCRIPTS == sorted(FIGURES) == sorted(WRITES)


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TRDNET_EXAMPLES_FAST": "1",
        "TRDNET_EXAMPLES_OUTPUT": str(tmp_path / "output"),
        "NILEARN_DATA": str(tmp_path / "nilearn_data"),  # never touch the user's cache
        "MPLBACKEND": "Agg",
    }
    env.pop("TRDNET_FMRIPREP_DIR", None)
    return forked.run([EXAMPLES / script], cwd=tmp_path, env=env, timeout=300)


@pytest.mark.slow  # every tutorial in a process of its own
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_in_fast_mode(script, tmp_path):
    completed = _run(script, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    folder = tmp_path / "output" / script.removesuffix(".py")
    for figure in FIGURES[script]:
        path = folder / figure
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{script} did not write {figure}"
        assert path.stat().st_size > 1000, f"{script}: {figure} is nearly empty"
    assert "Traceback" not in completed.stderr
    WRITES[script](folder)


#: Calls whose result's ``notes`` trdnet already logs as warnings when they arise
#: (``GroupResult.note``; ``export.native._log_problems``): a tutorial printing them says each twice.
LOGGED_NOTES = ("run_group", "export_targets")


def test_no_example_prints_notes_trdnet_already_logged():
    import ast

    for script in SCRIPTS:
        tree = ast.parse((EXAMPLES / script).read_text(encoding="utf-8"))
        logged = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) in LOGGED_NOTES
                  for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.For) and isinstance(node.iter, ast.Attribute) and node.iter.attr == "notes"
                    and getattr(node.iter.value, "id", None) in logged):
                printed = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
                              for n in ast.walk(node))
                assert not printed, f"{script}:{node.lineno} prints {node.iter.value.id}.notes, already logged"


def test_run_all_reports_a_failing_example(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", EXAMPLES / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    broken = tmp_path / "01_broken.py"
    broken.write_text("raise SystemExit(3)\n")
    fine = tmp_path / "02_fine.py"
    fine.write_text("print('ok')\n")
    monkeypatch.setattr(module, "HERE", tmp_path)
    assert [p.name for p in module.example_scripts()] == ["01_broken.py", "02_fine.py"]
    assert module.main() == 1
    broken.write_text("print('fixed')\n")
    assert module.main() == 0
