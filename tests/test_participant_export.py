"""Navigator files of the participant-level target (trdnet.export.participant), and the participant target,
its competing sites and its navigator files in the participant's report."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import browser
from navigator_files import ScalpOracle
from test_export_navigator import SCALP_LEVEL, _truth_axes, check_navigator_files
from trdnet.config import Settings
from trdnet.errors import ExportError
from trdnet.export.participant import PARTICIPANT_NAVIGATION_DESC, export_participant_target
from trdnet.inputs.anatomy import find_native_anatomy
from trdnet.inputs.runs import Run
from trdnet.outputs import read_tsv

MNI = "MNI152NLin2009cAsym"
ENTITIES = {"sub": "01", "task": "rest", "space": MNI}


def _participant_table(space: str = MNI) -> pd.DataFrame:
    """A participant targets table as the participant step writes it: the personalised target first."""
    return pd.DataFrame({
        "participant_id": ["sub-01", "sub-01"], "target": ["personalised_cluster", "f3_beam"],
        "method": ["cluster", ""], "space": [space, space], "x": [-38.3, -37.0], "y": [41.7, 26.0],
        "z": [30.2, 49.0], "r_sgacc": [-0.31, -0.12], "primary": [True, False], "n_runs": [2, 2],
    })


def _runs(anatomies) -> list[Run]:
    return [Run(bold=Path(f"sub-01_ses-{i}_task-rest_space-{MNI}_desc-preproc_bold.nii.gz"),
                entities={"sub": "01", "ses": str(i), "task": "rest", "space": MNI}, anatomy=anat, simulated=True)
            for i, anat in enumerate(anatomies, 1)]


def _written(files) -> SimpleNamespace:
    """The export as :func:`check_navigator_files` reads it: the files and the coordinates table written."""
    coords = next(p for p in files if p.name.endswith("_coords.tsv"))
    return SimpleNamespace(files=list(files), table=read_tsv(coords))


#: The Brainsight coordinate system of each space (Brainsight names the image frame, not the space).
BRAINSIGHT_SYSTEM = {"T1w": "NIfTI:Scanner", MNI: "NIfTI:MNI-152"}


def _check_space(files, space: str) -> None:
    """Every navigator file names its space, in its name, its contents and its sidecar."""
    for path in files:
        if path.name.endswith(".json"):
            continue
        assert f"space-{space}" in path.name and f"desc-{PARTICIPANT_NAVIGATION_DESC}_" in path.name, path.name
        sidecar = path.with_name(re.sub(r"(\.nii\.gz|\.tsv|\.txt|\.xml)$", ".json", path.name))
        assert json.loads(sidecar.read_text())["Space"] == space, sidecar.name
        if path.name.endswith(".nii.gz"):
            assert f"space-{space}" in nib.load(path).header["descrip"].tobytes().decode(), path.name
        elif path.name.endswith("_brainsight.txt"):
            assert f"# Coordinate system: {BRAINSIGHT_SYSTEM[space]}\n" in path.read_text(), path.name
        else:
            assert space in path.read_text(), path.name


def test_participant_target_written_for_the_navigator_on_the_participants_t1w(simulated_anat, tmp_path):
    anat = find_native_anatomy(simulated_anat.root, "01")
    targets = _participant_table()
    summary, files = export_participant_target(_runs([anat, anat]), targets, ENTITIES, tmp_path, Settings())
    # one T1w for both sessions: one set of files, in the participant's folder, with no session
    assert {p.parent for p in files} == {tmp_path / "sub-01" / "func"}
    assert all(p.name.startswith("sub-01_task-rest_space-T1w_") for p in files)
    kinds = {p.name.split("navtargets_")[1] for p in files}
    assert {"coords.tsv", "brainsight.txt", "localiteEntryTarget.xml", "localiteInstrumentMarker.xml",
            "dseg.nii.gz"} <= kinds
    _check_space(files, "T1w")
    result = _written(files)
    table = result.table.set_index("name")
    # the exported target is the participant target row, carried to the T1w by the simulator's exact map
    for name, row in targets.set_index("target").iterrows():
        source = table.loc[name, ["source_x", "source_y", "source_z"]].to_numpy(float)
        np.testing.assert_allclose(source, row[["x", "y", "z"]].to_numpy(float), atol=0.01)
        truth = simulated_anat.paths["truth"].mni_to_t1w(row[["x", "y", "z"]].to_numpy(float)[None])[0]
        np.testing.assert_allclose(table.loc[name, ["x", "y", "z"]].to_numpy(float), truth, atol=0.05)
    # Brainsight and Localite hold those coordinates (within 1e-4 mm of the table) and a coil pose on the scalp
    head = ScalpOracle(nib.load(simulated_anat.paths["t1w"]), SCALP_LEVEL)
    check_navigator_files(result, head, "NIfTI:Scanner",
                          _truth_axes(simulated_anat.paths["truth"].mni_to_t1w, result.table))
    assert summary["navigation_space"] == "T1w" and summary["navigation_t1w"] == [anat.t1w.name]
    np.testing.assert_allclose([summary[f"navigation_{a}"] for a in "xyz"],
                               table.loc["personalised_cluster", ["x", "y", "z"]].to_numpy(float), atol=1e-3)


def test_participant_target_without_anatomy_stays_in_the_template(tmp_path):
    targets = _participant_table()
    _, files = export_participant_target(_runs([None, None]), targets, ENTITIES, tmp_path, Settings())
    _check_space(files, MNI)
    result = _written(files)
    np.testing.assert_allclose(result.table[["x", "y", "z"]].to_numpy(float),
                               targets[["x", "y", "z"]].to_numpy(float), atol=0.01)
    brainsight = next(p for p in files if p.name.endswith("_brainsight.txt")).read_text()
    assert "# Coordinate system: NIfTI:MNI-152" in brainsight and "SIMULATED" in brainsight


def test_sessions_with_their_own_t1w_get_one_set_of_files_each(simulated_anat, tmp_path):
    anatomies = []
    for ses in ("1", "2"):
        simulated_anat.copy(tmp_path / f"anat{ses}")
        anatomies.append(dataclasses.replace(find_native_anatomy(tmp_path / f"anat{ses}", "01"), session=ses))
    targets = _participant_table()
    summary, files = export_participant_target(_runs(anatomies), targets, ENTITIES, tmp_path / "out", Settings())
    for ses, anat in zip(("1", "2"), anatomies):
        own = [p for p in files if p.parent == tmp_path / "out" / "sub-01" / f"ses-{ses}" / "func"]
        assert own and all(p.name.startswith(f"sub-01_ses-{ses}_task-rest_space-T1w_") for p in own)
        _check_space(own, "T1w")
        coords = _written(own).table.set_index("name")
        np.testing.assert_allclose(coords.loc["personalised_cluster", ["source_x", "source_y", "source_z"]]
                                   .to_numpy(float), targets.loc[0, ["x", "y", "z"]].to_numpy(float), atol=0.01)
        assert json.loads(next(p for p in own if p.name.endswith("_coords.json")).read_text())[
            "SourceImage"].endswith(anat.t1w.name)
    assert len(files) == 2 * len(own)
    assert summary["navigation_t1w"] == [a.t1w.name for a in anatomies]
    # a target in T1w space from runs of two T1w images belongs to neither: refused, nothing written
    with pytest.raises(ExportError, match=r"in T1w space but its runs come with different T1w images"):
        export_participant_target(_runs(anatomies), _participant_table("T1w"), ENTITIES, tmp_path / "t1w",
                                  Settings())
    assert not (tmp_path / "t1w").exists()


def test_participant_target_on_a_mesh_goes_through_the_surface_export(simulated_anat, tmp_path):
    from trdnet.inputs.surface import MNI305_TO_MNI152

    anat = find_native_anatomy(simulated_anat.root, "01")
    mni152 = nib.affines.apply_affine(MNI305_TO_MNI152, [-40.0, 30.0, 40.0])
    # a surface participant's row: mesh coordinates (MNI305), vertex, and its MNI152 position
    targets = pd.DataFrame({"participant_id": ["sub-01"], "target": ["personalised_cluster"], "method": ["cluster"],
                            "space": ["MNI305"], "x": [-40.0], "y": [30.0], "z": [40.0], "hemi": ["R"],
                            "vertex": [2345], "mesh": ["fsaverage5"], "mni152_x": [mni152[0]],
                            "mni152_y": [mni152[1]], "mni152_z": [mni152[2]], "r_sgacc": [-0.3],
                            "primary": [True]})
    entities = {"sub": "01", "task": "rest", "space": "fsaverage5"}
    _, files = export_participant_target(_runs([anat, anat]), targets, entities, tmp_path, Settings())
    _check_space(files, "T1w")
    coords = _written(files).table
    truth = simulated_anat.paths["truth"].mni_to_t1w(mni152[None])[0]
    np.testing.assert_allclose(coords[["x", "y", "z"]].to_numpy(float)[0], truth, atol=0.05)
    notes = json.loads(next(p for p in files if p.name.endswith("_coords.json")).read_text())["Notes"]
    assert any("vertex 2345 of the R fsaverage5 mesh" in n for n in notes)


# --- the participant step and the report, on the session's processed cohort (marked slow by its fixture) ---


@pytest.fixture(scope="module")
def cohort_out(processed_cohort, tmp_path_factory):
    """The processed SIMULATED cohort copied (the report is written into the copy)."""
    return processed_cohort.copy(tmp_path_factory.mktemp("participant-export") / "out")


PREFIX = f"sub-01_task-rest_space-{MNI}"


def test_the_participant_step_writes_and_records_the_navigator_files(cohort_out):
    folder = cohort_out / "sub-01" / "func"
    row = read_tsv(folder / f"{PREFIX}_desc-participant_targets.tsv").set_index("target")
    record = json.loads((cohort_out / "logs" / "participant" / f"{PREFIX}_done.json").read_text())
    navigation = [f for f in record["Files"] if f"desc-{PARTICIPANT_NAVIGATION_DESC}_" in f]
    files = [cohort_out / f for f in navigation]
    assert files and all(p.is_file() for p in files)
    _check_space(files, "T1w")
    coords = _written(files).table.set_index("name")
    for name in row.index:
        np.testing.assert_allclose(coords.loc[name, ["source_x", "source_y", "source_z"]].to_numpy(float),
                                   row.loc[name, ["x", "y", "z"]].to_numpy(float), atol=0.01)
    assert record["Summary"]["navigation_space"] == "T1w"
    # the runs' report sections do not take the participant's files for their own
    from trdnet.report import collect

    for run in collect.find_runs(cohort_out, "01"):
        assert not [p for p in run.export_files() if PARTICIPANT_NAVIGATION_DESC in p.name]


def _table_values(page: str, name: str, run: str) -> pd.DataFrame:
    """The numeric cells of the ``data-table=name`` table tagged ``data-run=run``, column by column."""
    found = re.search(rf'<table[^>]*data-table="{name}" data-run="{re.escape(run)}">(.*?)</table>', page, re.S)
    assert found, (name, run)
    columns = re.findall(r"<th>(.*?)</th>", found.group(1))
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(1).split("</thead>")[1])
    values = {}
    for row in rows:
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row):
            for item in browser.tagged_values(cell):
                values.setdefault(item["data-name"], []).append(float(item["data-value"]))
    assert values, (name, run)
    return pd.DataFrame(values)[[c for c in columns if c in values]]


def test_the_report_shows_the_participant_target_and_every_competing_site(cohort_out):
    from trdnet.report import write_participant_report

    page = write_participant_report(cohort_out, "sub-01").read_text()
    folder = cohort_out / "sub-01" / "func"
    table = read_tsv(folder / f"{PREFIX}_desc-participant_targets.tsv")
    primary = table[table["primary"].astype(str) == "True"].iloc[0]
    shown = {}
    for v in browser.tagged_values(page):  # the summary's spans come first, before the tables' cells
        if v.get("data-run") == PREFIX:
            shown.setdefault(v["data-name"], v)
    for name, column in (("target_x", "x"), ("target_y", "y"), ("target_z", "z"), ("r_sgacc", "r_sgacc"),
                         ("retest_mm", "retest_mm"), ("n_runs", "n_runs")):
        assert float(shown[name]["data-value"]) == pytest.approx(float(primary[column]), abs=1e-9), name
    assert shown["target_x"]["text"] == f"{primary['x']:.1f}"
    assert shown["reliability"]["text"] == str(primary["reliability"])
    assert shown["target_space"]["text"] == str(primary["space"]) == MNI
    assert shown["sufficiency_note"]["text"] == str(primary["sufficiency_note"])
    coords = read_tsv(next((cohort_out / "sub-01" / "func").glob(
        f"sub-01_task-rest_space-T1w_desc-{PARTICIPANT_NAVIGATION_DESC}_coords.tsv"))).set_index("name")
    native = coords.loc[primary["target"], ["x", "y", "z"]].to_numpy(float)
    assert shown["target_t1w"]["text"] == "({:.1f}, {:.1f}, {:.1f}) mm".format(*native)
    # the participant's sites: every site of its primary method, with the values on disk
    sites = read_tsv(folder / f"{PREFIX}_desc-participantsites_targets.tsv")
    sites = sites[sites["method"] == primary["method"]].reset_index(drop=True)
    on_page = _table_values(page, "sites", PREFIX)
    assert len(on_page) == len(sites) >= 1
    for column in ("x", "y", "z", "share"):
        np.testing.assert_allclose(on_page[column], sites[column].astype(float), atol=1e-9, err_msg=column)
    # each run's sites, from its own table, and drawn: the figure captions say what the markers are
    from trdnet.report import collect

    for run in collect.find_runs(cohort_out, "01"):
        run_sites = run.table("desc-sites_targets.tsv")
        run_sites = run_sites[run_sites["method"] == "cluster"].reset_index(drop=True)
        np.testing.assert_allclose(_table_values(page, "sites", run.prefix)["share"], run_sites["share"],
                                   atol=1e-9)
    # two runs' maps and the participant's figure
    assert len(re.findall(r"<figcaption>[^<]*orange circles: sites of the bootstrap targets", page)) == 3
    assert re.search(r"<figcaption>The participant-level target \(gold star\)", page)
    # its navigator files are listed
    export = re.search(rf'<table[^>]*data-table="export" data-run="{PREFIX}">(.*?)</table>', page, re.S)
    assert export and f"desc-{PARTICIPANT_NAVIGATION_DESC}_brainsight.txt" in export.group(1)


# --- competing sites drawn and listed (fast: tables written here) ---

TARGET = np.array([-38.0, 44.0, 30.0])


def _sites_and_candidates():
    """A target holding 60% of the resamples and a competing site 23 mm away holding 40%."""
    far = TARGET + np.array([-5.0, -10.0, 20.0]) * 23.0 / np.linalg.norm([-5.0, -10.0, 20.0])
    sites = pd.DataFrame({"method": "cluster", "site": [1, 2], "x": [TARGET[0], far[0]], "y": [TARGET[1], far[1]],
                          "z": [TARGET[2], far[2]], "n_resamples": [12, 8], "share": [0.6, 0.4],
                          "holds_target": [True, False]})
    candidates = pd.DataFrame({"method": "cluster", "rank": [1, 2, 3], "x": [TARGET[0], far[0] + 2.0, -20.0],
                               "y": [TARGET[1], far[1], 10.0], "z": [TARGET[2], far[2], 60.0],
                               "n_voxels": [40, 25, 5], "volume_mm3": [2560.0, 1600.0, 320.0],
                               "mean_r": [-0.21, -0.27, -0.15], "peak_r": [-0.4, -0.45, -0.2],
                               "score": [40.0, 25.0, 5.0], "chosen": [True, False, False]})
    return sites, candidates, far


def test_a_competing_site_23_mm_away_is_drawn_on_every_cut_and_listed_with_its_share():
    from trdnet.report import figures_brain, participant

    sites, candidates, far = _sites_and_candidates()
    styles = figures_brain.competing_styles(sites.drop(columns="method"), candidates.drop(columns="method"))
    fig = figures_brain.competing_sites_figure(TARGET, styles, title="participant-level target")
    cuts = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}  # the ortho cuts' horizontal and vertical world axes
    drawn = [ax for ax in fig.axes if any(t.get_text() == "site 2 40%" for t in ax.texts)]
    assert len(drawn) == 3
    for ax, (h, v) in zip(drawn, cuts.values()):
        # the site is inside the visible window of every cut (the zoom widened to hold it)
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        assert x0 < far[h] < x1 and y0 < far[v] < y1, (ax.get_xlim(), ax.get_ylim(), far)
        # and its marker is there, 23 mm off every slice through the target (not only its label)
        points = np.vstack([np.asarray(c.get_offsets(), float).reshape(-1, 2) for c in ax.collections])
        assert np.linalg.norm(points - [far[h], far[v]], axis=1).min() < 1e-6, (h, v)
    assert all(any(t.get_text() == "cluster 3" for t in ax.texts) for ax in drawn)
    shown = participant.site_table(sites.drop(columns="method"), candidates.drop(columns="method"), MNI, 10.0)
    assert list(shown["space"]) == [MNI, MNI]
    np.testing.assert_allclose(shown["share"], [0.6, 0.4])
    # each site's cluster: the one whose centre is within the site separation, with its mean r
    assert list(shown["cluster"]) == [1, 2]
    np.testing.assert_allclose(shown["mean_r"], [-0.21, -0.27])
    np.testing.assert_allclose(shown["cluster_distance_mm"], [0.0, 2.0], atol=1e-9)
    alone = participant.site_table(sites.drop(columns="method"), candidates.drop(columns="method").iloc[[2]],
                                   MNI, 10.0)
    assert list(alone["cluster"]) == [0, 0] and alone["mean_r"].isna().all()


def test_the_participant_block_reads_its_values_from_the_tables_on_disk(tmp_path):
    from trdnet.outputs import write_tsv
    from trdnet.records import write_completion_record, write_participant_record
    from trdnet.report import participant

    sites, candidates, _ = _sites_and_candidates()
    targets = _participant_table().assign(retest_kind=["session", ""], retest_mm=[7.25, np.nan],
                                          reliability=["fair", ""], minutes_for_5mm=[38.5, np.nan],
                                          sufficiency_note=["about 38.5 minutes would be needed for 5 mm", ""])
    folder = tmp_path / "sub-01" / "func"
    folder.mkdir(parents=True)
    write_tsv(folder / f"{PREFIX}_desc-participant_targets.tsv", targets)
    write_tsv(folder / f"{PREFIX}_desc-participantsites_targets.tsv", sites)
    write_tsv(folder / f"{PREFIX}_desc-participantcandidates_targets.tsv", candidates)
    # the report shows what the participant step finished: its record, written last, lists the tables
    written = sorted(str(p.relative_to(tmp_path)) for p in folder.iterdir())
    runs = ["sub-01_ses-1_task-rest", "sub-01_ses-2_task-rest"]
    for run in runs:  # and stands only while the runs it joins are finished
        write_completion_record(tmp_path, run, "sub-01", "digest", [], {}, simulated=True)
    write_participant_record(tmp_path, PREFIX, runs, "digest", written, {}, simulated=True)
    page = participant.participant_block(tmp_path, "01")
    shown = {}
    for v in browser.tagged_values(page):  # the summary's spans come first, before the tables' cells
        if v.get("data-run") == PREFIX:
            shown.setdefault(v["data-name"], v)
    for name, expected in (("target_x", -38.3), ("target_y", 41.7), ("target_z", 30.2), ("r_sgacc", -0.31),
                           ("retest_mm", 7.25), ("n_runs", 2)):
        assert float(shown[name]["data-value"]) == expected, name
    assert shown["target_space"]["text"] == MNI and shown["reliability"]["text"] == "fair"
    assert shown["sufficiency_note"]["text"] == "about 38.5 minutes would be needed for 5 mm"
    on_page = _table_values(page, "sites", PREFIX)
    for column in ("x", "y", "z", "share"):
        np.testing.assert_allclose(on_page[column], sites[column], atol=1e-9, err_msg=column)
    np.testing.assert_allclose(on_page["mean_r"], [-0.21, -0.27])
    assert "orange circles: sites of the bootstrap targets" in page
    assert f'<p data-name="export" data-run="{PREFIX}">none written</p>' in page
    assert shown["target_t1w"]["text"] == "not exported"


def test_surface_sites_are_outlined_at_their_nearest_vertex(monkeypatch):
    from trdnet.inputs.surface import standard_meshes
    from trdnet.report import figures_surface, participant

    meshes, _ = standard_meshes("fsaverage5")
    left, right = meshes["L"][0], meshes["R"][0]
    # a site on a left vertex, one 0.5 mm off a right vertex
    points = np.vstack([left[1234], right[4321] + [0.5, 0.0, 0.0]])
    found = figures_surface.site_vertices(points)
    assert [(h, v) for h, v, _ in found] == [("L", 1234), ("R", 4321)]
    assert found[0][2] == pytest.approx(0.0, abs=1e-9) and found[1][2] <= 0.5 + 1e-9
    # the participant figure on the cortex outlines the target and each site at those vertices
    drawn = {}
    original = figures_surface.seed_map_on_cortex

    def spy(values, **kwargs):
        drawn.update(kwargs)
        return original(values, **kwargs)

    monkeypatch.setattr(figures_surface, "seed_map_on_cortex", spy)
    sites = pd.DataFrame({"site": [1, 2], "x": points[:, 0], "y": points[:, 1], "z": points[:, 2],
                          "n_resamples": [6, 4], "share": [0.6, 0.4], "holds_target": [True, False]})
    primary = {"target": "personalised_cluster", "hemi": "L", "vertex": 1234, "space": "MNI305",
               "x": points[0, 0], "y": points[0, 1], "z": points[0, 2]}
    html = participant.participant_figure(primary, sites, None, {}, "sub-01_task-rest_space-fsaverage5")
    assert "orange outlines: sites of the bootstrap targets" in html and "<img" in html
    assert drawn["marks"] == {"L": [1234]}
    assert {hemi: [v for v, _ in items] for hemi, items in drawn["competing"].items()} == {"L": [1234], "R": [4321]}


def _participant_runs(processed_cohort, subject: str = "01"):
    from trdnet.inputs.bids import find_runs

    return find_runs(processed_cohort.fmriprep_dir, [subject], processed_cohort.settings.space)


def _files_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_a_rerun_writing_fewer_files_withdraws_the_others_and_leaves_the_runs_alone(processed_cohort, tmp_path):
    from trdnet.participants import participant_prefix, process_participant

    out = processed_cohort.copy(tmp_path / "out")
    runs = _participant_runs(processed_cohort)
    prefix = participant_prefix(runs[0])
    record = out / "logs" / "participant" / f"{prefix}_done.json"
    before = set(json.loads(record.read_text())["Files"])
    others = {k: v for k, v in _files_of(out).items() if k not in before and not k.startswith("logs/")}
    settings = processed_cohort.settings
    fewer = dataclasses.replace(settings, export=dataclasses.replace(settings.export, formats=("brainsight",)))
    files, _, status = process_participant(runs, prefix, out, fewer, overwrite=True)
    assert status == "done"
    gone = before - set(files)
    assert any(name.endswith(".xml") for name in gone) and any(name.endswith(".nii.gz") for name in gone), gone
    assert not [name for name in gone if (out / name).exists()]
    # what is on disk of the participant step is exactly what its record lists
    on_disk = {str(p.relative_to(out)) for p in out.rglob("sub-01_*desc-participant*")}
    assert on_disk == set(files) == set(json.loads(record.read_text())["Files"])
    # every other output (the runs', other participants') is as it was
    after = _files_of(out)
    assert {k: after.get(k) for k in others} == others


def test_a_failed_rerun_leaves_no_earlier_participant_file_and_the_next_one_publishes_its_set(
        processed_cohort, tmp_path, monkeypatch):
    from trdnet import targeting
    from trdnet.errors import TargetingError
    from trdnet.participants import participant_prefix, process_participant

    out = processed_cohort.copy(tmp_path / "out")
    runs = _participant_runs(processed_cohort)
    prefix = participant_prefix(runs[0])
    settings = processed_cohort.settings

    def no_target(*args, **kwargs):
        raise TargetingError("no DLPFC cluster")

    with monkeypatch.context() as patch:
        patch.setattr(targeting, "participant_targets", no_target)
        with pytest.raises(TargetingError):
            process_participant(runs, prefix, out, settings, overwrite=True)
    assert not list(out.rglob("sub-01_*desc-participant*"))
    assert not (out / "logs" / "participant" / f"{prefix}_done.json").exists()
    files, _, status = process_participant(runs, prefix, out, settings)
    assert status == "done" and {str(p.relative_to(out)) for p in out.rglob("sub-01_*desc-participant*")} == set(files)


def test_a_surface_participant_summary_carries_its_vertex_and_the_console_says_approximate(capsys):
    from trdnet.console import report_results
    from trdnet.participants import participant_summary
    from trdnet.pipeline import RunResult

    table = pd.DataFrame({"target": ["personalised"], "space": ["MNI305"], "x": [-38.0], "y": [40.0], "z": [28.0],
                          "hemi": ["L"], "vertex": pd.array([2345], dtype="Int64"), "r_sgacc": [-0.3],
                          "n_runs": [2], "retest_mm": [4.2], "reliability": ["fair"], "minutes_for_5mm": [12.0],
                          "sufficiency_note": ["about 12 min needed for 5 mm; 16.0 min available"]})
    navigation = {"navigation_space": MNI, "navigation_x": -37.5, "navigation_y": 41.0, "navigation_z": 27.0}
    summary = participant_summary(table, navigation)
    assert summary["target_hemi"] == "L" and summary["target_vertex"] == 2345
    report_results([RunResult("sub-01_task-rest_space-fsaverage5", "01", "done", [], summary)], Path("out"))
    printed = capsys.readouterr().out
    assert "(vertex 2345, hemi-L)" in printed and "approximate: the mesh's MNI152" in printed
    # a volume participant has neither, and no such note
    volume = participant_summary(table.drop(columns=["hemi", "vertex"]).assign(space=MNI), navigation)
    assert "target_vertex" not in volume and "target_hemi" not in volume


def test_a_replacement_cut_short_is_finished_by_the_next_one_and_never_reaches_run_outputs(tmp_path):
    from trdnet.participants import replacing_record_path, set_aside, withdraw_replaced
    from trdnet.records import participant_record_path, write_participant_record

    prefix = f"sub-01_task-rest_space-{MNI}"
    names = [f"sub-01/func/{prefix}_desc-participant_targets.tsv",
             f"sub-01/func/sub-01_task-rest_space-T1w_desc-{PARTICIPANT_NAVIGATION_DESC}_localite.xml",
             f"sub-01/ses-2/func/sub-01_ses-2_task-rest_space-T1w_desc-{PARTICIPANT_NAVIGATION_DESC}_coords.tsv",
             # a list edited by hand naming a run's output: never removed
             f"sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1_space-{MNI}_desc-target_coords.tsv",
             f"sub-01/ses-1/func/sub-01_ses-1_task-rest_space-{MNI}_desc-target_coords.tsv"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    write_participant_record(tmp_path, prefix, ["a", "b"], "digest", names, {}, True)
    set_aside(tmp_path, prefix)  # a re-run starts, then dies before its record
    assert not participant_record_path(tmp_path, prefix).exists()
    write_participant_record(tmp_path, prefix, ["a", "b"], "digest", names[:1], {}, True)
    set_aside(tmp_path, prefix)  # the next re-run: the earlier list is kept, not replaced
    removed = withdraw_replaced(tmp_path, prefix, keep=names[:1])
    assert sorted(removed) == sorted(names[1:3])
    assert [(tmp_path / n).exists() for n in names] == [True, False, False, True, True]
    assert not replacing_record_path(tmp_path, prefix).exists()


DO_NOT_USE = "Too little data (8.0 min retained, 15 min needed for a word better than poor): do not use this target yet"


def _check_reliability_in_every_file(files, name: str, word: str, note: str, of: str) -> None:
    """Every navigator file a person reads gives the target's reliability word and note, and the name says it;
    each warning names the run (or the participant target, ``of``) whose target it is, once."""
    coords = _written(files).table.set_index("name")
    assert coords.loc[name, "reliability"] == word and note in coords.loc[name, "reliability_note"]
    shown = f"{name} [reliability {word}]"
    assert coords.loc[name, "navigator_name"] == shown
    for path in files:
        text = path.read_text() if not path.name.endswith(".nii.gz") else ""
        if path.name.endswith(".json"):
            sidecar = json.loads(text)
            warned = [n for n in sidecar["Notes"] if f"reliability {word}." in n]
            assert len(warned) == 1 and note in warned[0] and f" of {of}: " in warned[0], path.name
            assert sidecar["TargetsOf"] == of, path.name
            if "Targets" in sidecar:
                entry = sidecar["Targets"][name]
                assert entry["Reliability"] == word and note in entry["ReliabilityNote"], path.name
                assert entry["NavigatorName"] == shown, path.name
        elif path.name.endswith("_brainsight.txt"):
            comments = [line for line in text.splitlines() if line.startswith("# Warning:")]
            assert [c for c in comments if f"target {name} of {of}: reliability {word}." in c and note in c], text
            rows = [line.split("\t")[0] for line in text.splitlines() if not line.startswith("#")]
            assert shown in rows, rows
        elif path.name.endswith(".xml"):
            assert text.count(f"<!--target {name} of {of}: reliability {word}. {note}") == 1, path.name
            assert f"targets of {of}; " in text, path.name
            assert f'description="{shown}' in text, path.name
            if "InstrumentMarker" in path.name:
                assert f'additionalInformation="target {name} of {of}: reliability {word}. {note}' in text, path.name


def test_a_target_not_to_be_used_says_so_in_every_navigator_file_of_the_participant(tmp_path):
    targets = _participant_table()
    targets["reliability"] = ["poor", ""]
    targets["note"] = ["", "MNI152 literature site, not sampled"]
    targets["sufficiency_note"] = [f"{DO_NOT_USE}; acquire more data. Stretches of 2.0 min already agree.", ""]
    _, files = export_participant_target(_runs([None, None]), targets, ENTITIES, tmp_path, Settings())
    assert {p.suffix for p in files} >= {".txt", ".xml", ".tsv", ".json"}
    _check_reliability_in_every_file(files, "personalised_cluster", "poor", DO_NOT_USE,
                                     f"sub-01_task-rest_space-{MNI} (participant)")
    # a reference site has no reliability word: its name and the files stay as they were
    coords = _written(files).table.set_index("name")
    assert coords.loc["f3_beam", "reliability"] == "" or pd.isna(coords.loc["f3_beam", "reliability"])
    assert "f3_beam [" not in next(p for p in files if p.name.endswith("_brainsight.txt")).read_text()


def test_a_run_target_not_to_be_used_says_so_in_every_navigator_file(tmp_path):
    from trdnet.pipeline import write_navigation

    run = _runs([None])[0]
    targets = _participant_table().drop(columns=["n_runs", "participant_id"])
    targets["reliability"] = ["unknown", ""]
    targets["note"] = [f"{DO_NOT_USE}; acquire more data.", ""]
    _, files = write_navigation(run, targets, tmp_path, Settings())
    assert any("desc-navtargets_" in p.name for p in files)
    _check_reliability_in_every_file(files, "personalised_cluster", "unknown", DO_NOT_USE, run.prefix)


def test_a_good_target_keeps_its_name_in_the_navigators(tmp_path):
    targets = _participant_table()
    targets["reliability"] = ["good", ""]
    _, files = export_participant_target(_runs([None, None]), targets, ENTITIES, tmp_path, Settings())
    brainsight = next(p for p in files if p.name.endswith("_brainsight.txt")).read_text()
    assert "personalised_cluster\t" in brainsight and ("# Warning: target personalised_cluster of "
                                                       f"sub-01_task-rest_space-{MNI} (participant): reliability "
                                                       "good.") in brainsight


def test_a_participant_step_interrupted_after_its_navigator_files_leaves_none_of_its_files(
        processed_cohort, tmp_path, monkeypatch):
    """Ctrl-C (or a worker stopped) between the navigator files and the record: no file a team could load
    without the record that vouches for it."""
    import trdnet.participants
    from trdnet.participants import participant_prefix, process_participant

    out = processed_cohort.copy(tmp_path / "out")
    runs = _participant_runs(processed_cohort)
    prefix = participant_prefix(runs[0])
    for path in out.rglob("sub-01_*desc-participant*"):  # a first participant step
        path.unlink()
    (out / "logs" / "participant" / f"{prefix}_done.json").unlink()
    placed, staged = [], []

    def interrupted(path, values):  # the navigator files are written by now
        for found in out.rglob("sub-01_*desc-participantnavtargets*"):
            (staged if ".trdnet" in found.relative_to(out).parts else placed).append(found.name)
        raise KeyboardInterrupt

    monkeypatch.setattr(trdnet.participants, "write_tsv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process_participant(runs, prefix, out, processed_cohort.settings)
    assert staged and not placed  # written, but not in place until all are
    assert not list(out.rglob("sub-01_*desc-participant*"))
    assert not list((out / ".trdnet" / "staging").glob("*_participant"))
    assert not (out / "logs" / "participant" / f"{prefix}_done.json").exists()
