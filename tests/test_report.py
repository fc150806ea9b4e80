"""HTML reports: built from a small SIMULATED cohort processed by the real
pipeline, opened in headless Chromium, numbers checked against the TSVs."""

from __future__ import annotations

import html as html_module
import re
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from trdnet.config import Settings
from trdnet.errors import InputError
from trdnet.outputs import read_tsv
from trdnet.report import write_group_report, write_participant_report
from trdnet.report import collect, figures_qc, group, html, methods_text, participant

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402



@pytest.fixture(scope="module")
def cohort_out(processed_cohort, tmp_path_factory):
    """The session's processed SIMULATED cohort (three participants, two sessions each), copied:
    the reports are written into the copy."""
    return processed_cohort.copy(tmp_path_factory.mktemp("report") / "out")


@pytest.fixture(scope="module")
def reports(cohort_out):
    return {"participant": write_participant_report(cohort_out, "sub-01"), "group": write_group_report(cohort_out)}


def _values(dom: str) -> list[dict]:
    return browser.tagged_values(dom)


def _primary(targets: pd.DataFrame) -> pd.Series:
    return targets[targets["primary"].astype(str) == "True"].iloc[0]


def test_participant_report_is_self_contained(reports):
    text = reports["participant"].read_text()
    assert reports["participant"].name == "sub-01.html"
    assert 'id="simulated-banner"' in text
    assert "<script" not in text and "<link" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    # one section per run (two sessions), each with QC, networks and target figures
    # (and the participant target from both sessions has its own summary boxes)
    assert text.count('class="summary" data-run=') == 3
    assert text.count('class="summary" data-run="sub-01_task-rest_space-MNI152NLin2009cAsym"') == 1
    assert text.count("<section id=\"run") == 2
    # the split-half targets the pipeline wrote are drawn with the bootstrap cloud
    assert len(re.findall(r"<figcaption>[^<]*and of the two split halves", text)) == 2


@pytest.mark.slow  # headless Chromium; fails (never skips) without it
def test_participant_report_in_browser(reports, cohort_out, tmp_path):
    shot = tmp_path / "participant.png"
    check = browser.check_page(reports["participant"], shot, height=3000)
    assert check.screenshot is not None and check.screenshot.stat().st_size > 10_000
    assert len(check.images) >= 14  # 7+ figures per run, two runs
    assert check.broken_images == []
    assert check.errors == [] and check.console == []

    values = _values(check.dom)
    runs = collect.find_runs(cohort_out, "01")
    assert len(runs) == 2
    for run in runs:
        qc = read_tsv(run.path("qc.tsv")).iloc[0]
        primary = _primary(read_tsv(run.path("targets.tsv")))
        shown = {v["data-name"]: v for v in values if v.get("data-run") == run.prefix}
        for name, expected, digits in (("minutes_retained", qc["minutes_retained"], 2),
                                       ("mean_fd", qc["mean_fd"], 3), ("target_x", primary["x"], 1),
                                       ("target_y", primary["y"], 1), ("target_z", primary["z"], 1),
                                       ("r_sgacc", primary["r_sgacc"], 2)):
            assert float(shown[name]["data-value"]) == pytest.approx(float(expected), abs=1e-9), name
            assert shown[name]["text"] == f"{float(expected):.{digits}f}", name
        assert shown["reliability"]["text"] == str(primary["reliability"])
        # the simulated participants have anatomy: the navigator files must have been written and shown
        native = sorted(run.folder.glob(f"sub-01_ses-{run.entities['ses']}_*space-T1w*_coords.tsv"))
        assert len(native) == 1, f"no navigator coordinates for {run.prefix}"
        row = read_tsv(native[0]).iloc[0]
        assert shown["target_t1w"]["text"] == f"({row['x']:.1f}, {row['y']:.1f}, {row['z']:.1f}) mm"
    assert [v["text"] for v in values if v["data-name"] == "data"] == ["SIMULATED"]


@pytest.mark.slow  # headless Chromium; fails (never skips) without it
def test_group_report_in_browser(reports, cohort_out, tmp_path):
    check = browser.check_page(reports["group"], tmp_path / "group.png", height=3000)
    assert check.images and check.broken_images == []
    assert check.errors == [] and check.console == []
    values = _values(check.dom)
    qc_files = sorted(cohort_out.glob("sub-*/**/*_qc.tsv"))
    qc = pd.concat([read_tsv(p) for p in qc_files])
    single = {v["data-name"]: v for v in values if v["data-name"] in ("n_runs", "n_participants", "n_failed",
                                                                       "median_minutes_retained")}
    assert float(single["n_runs"]["data-value"]) == len(qc_files) == 6
    assert float(single["n_participants"]["data-value"]) == 3
    assert float(single["n_failed"]["data-value"]) == 0
    assert float(single["median_minutes_retained"]["data-value"]) == pytest.approx(qc["minutes_retained"].median())
    # the cohort target table lists each run's primary target, in run order
    shown_x = [float(v["data-value"]) for v in values if v["data-name"] == "x"]
    expected_x = [_primary(read_tsv(p.with_name(p.name.replace("_qc.tsv", "_targets.tsv"))))["x"] for p in qc_files]
    assert shown_x == pytest.approx(expected_x, abs=1e-9)


@pytest.mark.slow  # headless Chromium; fails (never skips) without it
def test_browser_check_detects_broken_pages(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<html><head></head><body><img src="missing.png" alt="gone">'
                    '<img src="data:image/png;base64,AAAA" alt="bad"><script>console.error("boom")</script>'
                    "</body></html>")
    check = browser.check_page(page)
    assert len(check.broken_images) == 2
    assert any("boom" in e for e in check.errors)
    assert any("boom" in line for line in check.console)


def test_browser_check_fails_without_chromium(tmp_path, monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    page = tmp_path / "page.html"
    page.write_text("<html><body>x</body></html>")
    with pytest.raises(RuntimeError, match="no Chromium on PATH"):
        browser.check_page(page)


def test_missing_participant_is_a_clear_error(cohort_out):
    with pytest.raises(InputError, match="sub-99"):
        write_participant_report(cohort_out, "99")
    with pytest.raises(InputError, match="not found"):
        write_group_report(cohort_out / "nope")


def test_export_files_and_native_target_are_shown(cohort_out, tmp_path):
    run = collect.find_runs(cohort_out, "02")[0]
    copy = tmp_path / "func"
    shutil.copytree(run.folder, copy)
    for written in copy.glob("*desc-navtargets*"):  # start from a run without exports
        written.unlink()
    copied = collect.RunOutputs(copy, run.prefix)
    assert participant.export_block(copied).endswith('<p data-name="export">none written</p>')
    stem = f"sub-02_ses-{run.entities['ses']}_task-rest_space-T1w_desc-navtargets"
    pd.DataFrame({"name": ["personalised", "5cm"], "x": [-30.5, -40.0], "y": [20.3, 16.0], "z": [50.0, 54.0],
                  "space": ["T1w", "T1w"]}).to_csv(copy / f"{stem}_coords.tsv", sep="\t", index=False)
    (copy / f"{stem}_brainsight.txt").write_text("# Version: 12\n")
    (copy / f"{stem}_localite.xml").write_text("<InstrumentMarkerList/>")
    other_session = "sub-02_ses-zz_task-rest_space-T1w_desc-navtargets_brainsight.txt"
    (copy / other_session).write_text("# Version: 12\n")

    block = participant.export_block(copied)
    assert "Brainsight" in block and "Localite" in block and "T1w (RAS mm)" in block
    assert other_session not in block
    summary = participant.summary_box([copied], "02", simulated=True)
    assert "(-30.5, 20.3, 50.0) mm" in summary


def test_search_region_is_the_mask_the_run_wrote(cohort_out, tmp_path):
    """The outline is the written mask, never a region recomputed from the settings."""
    run = collect.find_runs(cohort_out, "01")[0]
    copy = tmp_path / "func"
    shutil.copytree(run.folder, copy)
    mask_path = copy / f"{run.prefix}_desc-searchregion_mask.nii.gz"
    written = nib.load(mask_path)
    one_voxel = np.zeros(written.shape, dtype=np.uint8)
    one_voxel[tuple(np.argwhere(np.asarray(written.dataobj) > 0)[0])] = 1
    nib.save(nib.Nifti1Image(one_voxel, written.affine), mask_path)
    copied = collect.RunOutputs(copy, run.prefix)
    np.testing.assert_array_equal(np.asarray(participant.search_region(copied).dataobj), one_voxel)
    mask_path.unlink()
    assert participant.search_region(copied) is None
    assert "DLPFC search region" in participant.target_block(copied)  # still drawn, without the outline


def test_a_run_without_bootstrap_has_no_cloud_of_zero_resamples(cohort_out, tmp_path):
    """``--n-bootstrap 0``: the figure shows the split halves and says reliability was not estimated."""
    run = collect.find_runs(cohort_out, "01")[0]
    copy = tmp_path / "func"
    shutil.copytree(run.folder, copy)
    with_cloud = participant.target_block(collect.RunOutputs(copy, run.prefix))
    assert "block-bootstrap resamples and of the two split halves" in with_cloud
    table = copy / f"{run.prefix}_desc-bootstrap_targets.tsv"
    read_tsv(table).iloc[:0].to_csv(table, sep="\t", index=False)  # what a run with no resample writes
    block = participant.target_block(collect.RunOutputs(copy, run.prefix))
    assert "Targets of the two split halves" in block and "no bootstrap was run" in block
    assert "0 block-bootstrap" not in block


def test_group_statistics_tables_are_shown(cohort_out, tmp_path):
    out = tmp_path / "out"
    (out / "group").mkdir(parents=True)
    pd.DataFrame({"contrast": ["DMN-SN"], "t": [2.5], "p": [0.03]}).to_csv(out / "group" / "stats_ttest.tsv",
                                                                           sep="\t", index=False)
    block = group.statistics(out)
    assert "stats_ttest.tsv" in block and "DMN-SN" in block and "2.500" in block
    assert "No group statistics" in group.statistics(tmp_path / "empty")


def test_cohort_tables_collect_every_run(cohort_out):
    runs = collect.find_runs(cohort_out)
    tables = group.cohort_tables(runs)
    assert len(tables["qc"]) == len(runs) == 6
    assert len(tables["networks"]) == 6 * len(runs)
    assert set(tables["targets"]["reliability"]) <= {"good", "fair", "poor"}


def test_each_participant_report_is_counted_in_a_progress_line(tmp_path, monkeypatch, caplog):
    """After the runs, the reports say how far they are on the trdnet logger (``-q`` silences them)."""
    from types import SimpleNamespace

    caplog.set_level("INFO", logger="trdnet")
    monkeypatch.setattr(participant, "find_runs", lambda out: [SimpleNamespace(subject=s) for s in ("01", "02")])
    monkeypatch.setattr(participant, "write_participant_report", lambda out, s: Path(out) / f"sub-{s}.html")
    paths = participant.write_participant_reports(tmp_path, n_jobs=1)
    assert [p.name for p in paths] == ["sub-01.html", "sub-02.html"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[report ")]
    assert lines == ["[report 1/2] sub-01.html: written", "[report 2/2] sub-02.html: written"]


def test_banner_only_for_simulated_data():
    assert "simulated-banner" in html.page("t", "<p>x</p>", simulated=True)
    assert "simulated-banner" not in html.page("t", "<p>x</p>", simulated=False)
    assert "&lt;b&gt;" in html.page("<b>", "", simulated=False)


def test_methods_text_follows_settings():
    settings = Settings().to_dict()
    text, cited = methods_text.methods_paragraph(settings, {"trdnet": "9.9", "nilearn": "0.14"}, simulated=True)
    assert "simulated" in text and "global signal regression" in text and "fmriprep" not in cited
    assert f"{settings['denoise']['fd_threshold']} mm" in text
    assert all(f"[{i}]" in text for i in range(1, len(cited) + 1))

    settings["denoise"]["global_signal"] = "none"
    settings["targeting"]["methods"] = ["hierarchical", "peak"]
    settings["targeting"]["hierarchical_linkage"] = "complete"
    text, cited = methods_text.methods_paragraph(settings, {}, simulated=False)
    assert "complete linkage on 1 - Spearman rho cut at 0.5" in text
    assert "no global signal regression" in text and "fMRIPrep" in text
    assert {"cole2020", "fox2012", "fmriprep"} <= set(cited)
    assert methods_text.references_html(cited).count("<li>") == len(cited)


def test_methods_text_without_bootstrap_says_reliability_was_not_estimated():
    """``--n-bootstrap 0`` leaves every target's reliability unknown: the text must not claim an estimate."""
    settings = Settings().to_dict()
    settings["targeting"]["n_bootstrap"] = 0
    for text in (methods_text.methods_paragraph(settings, {}, simulated=False)[0],
                 methods_text.citation_markdown(settings, {}, simulated=False)):
        assert "No bootstrap was run" in text and "reliability was not estimated" in text
        assert "block-bootstrap resamples" not in text and "0 circular" not in text
    settings["targeting"]["n_bootstrap"] = 25
    text, _ = methods_text.methods_paragraph(settings, {}, simulated=False)
    assert "estimated from 25 circular block-bootstrap resamples" in text and "No bootstrap" not in text


def test_methods_text_names_the_denoising_strategy_and_compcor():
    """The paragraph cites a strategy by the name the sidecar records, and CompCor (with its paper) when used."""
    for name in ("simple+gsr", "compcor"):
        settings = Settings.from_dict({"denoise": {"strategy": name}}).to_dict()
        assert settings["denoise"]["strategy"] == name
        text, cited = methods_text.methods_paragraph(settings, {}, simulated=False)
        assert f"the {name} denoising strategy" in text
        assert ("CompCor components" in text) == (name == "compcor") == ("behzadi2007" in cited)
        markdown = methods_text.citation_markdown(settings, {}, simulated=False)
        assert f"the {name} denoising strategy" in markdown
    text, _ = methods_text.methods_paragraph(Settings().to_dict(), {}, simulated=False)
    assert "trdnet's default denoising strategy" in text
    custom = Settings.from_dict({"denoise": {"fd_threshold": 0.3}}).to_dict()
    assert "strategy" not in methods_text.methods_paragraph(custom, {}, simulated=False)[0]


def test_methods_text_names_where_each_strategy_comes_from():
    """A strategy's stored source is quoted: nilearn has no 'simple+gsr' or 'scrubbing.5', giga-connectome does."""
    for name, source in (("compcor", "giga-connectome 'acompcor50'"),
                         ("scrubbing.5+gsr", "load_confounds_strategy('scrubbing', fd_threshold=0.5")):
        text, _ = methods_text.methods_paragraph(Settings.from_dict({"denoise": {"strategy": name}}).to_dict(), {},
                                                 simulated=False)
        quoted = text.split(f"the {name} denoising strategy (", 1)[1].split(". Each run", 1)[0]
        assert html_module.escape(source) in quoted, text


def test_methods_text_says_what_gsr_both_computed_and_where():
    """``--gsr both``: outputs keep the settings' choice; the targets table (volume runs) or a desc-gsr<other>
    network table (ROI runs) holds the other; nothing is said without it."""
    for gsr, other in ((True, "without"), (False, "with")):
        settings = Settings.from_dict({"denoise": {"global_signal": "basic" if gsr else "none"}}).to_dict()
        assert "--gsr both" not in methods_text.methods_paragraph(settings, {}, simulated=False)[0]
        settings["targeting"]["compare_gsr"] = True
        text, _ = methods_text.methods_paragraph(settings, {}, simulated=False)
        assert f"also cleaned {other} global signal regression and the personalised targets recomputed" in text
        assert f"all outputs use global signal regression {'on' if gsr else 'off'}" in text
        assert "other_gsr_x/y/z" in text and "gsr_distance_mm" in text
        roi = {"n_rois": 100, "atlas": "Schaefer", "space": "MNI152NLin2009cAsym", "already_cleaned": False}
        text, _ = methods_text.methods_paragraph(settings, {}, simulated=False, roi=roi)
        assert f"desc-gsr{'off' if gsr else 'on'}_networks.tsv" in text and "gsr_distance_mm" not in text
        text, _ = methods_text.methods_paragraph(settings, {}, simulated=False, roi={**roi, "already_cleaned": True})
        assert "--gsr both" not in text


def test_methods_text_without_reliability_claims_no_comparison():
    settings = Settings().to_dict()
    settings["targeting"]["reliability"] = False
    text, _ = methods_text.methods_paragraph(settings, {}, simulated=False)
    assert "reliability was not estimated (reliability switched off)" in text
    assert "split halves" not in text and "block-bootstrap" not in text


def test_trdnet_is_cited_as_citation_cff_and_pyproject_say():
    """Title and authors kept in methods_text agree with CITATION.cff; its URL is pyproject's Repository."""
    import yaml

    from trdnet import __version__
    from trdnet.outputs import code_url

    cff = yaml.safe_load((Path(__file__).resolve().parents[1] / "CITATION.cff").read_text())
    assert cff["title"] == methods_text.TRDNET_TITLE
    assert tuple(author["name"] for author in cff["authors"]) == methods_text.TRDNET_AUTHORS
    assert cff["repository-code"] == code_url() == methods_text.BIBTEX["trdnet"][1]["url"]
    assert str(cff["version"]) == __version__


def test_citation_files_cite_trdnet_with_the_version_that_wrote_the_outputs():
    settings = Settings().to_dict()
    software = {"trdnet": "7.7.7", "nilearn": "0.13"}
    text, cited = methods_text.methods_paragraph(settings, software, simulated=False)
    number = cited.index("trdnet") + 1
    assert f"with trdnet 7.7.7 [{number}]" in text
    markdown = methods_text.citation_markdown(settings, software, simulated=False)
    assert f"{number}. The trdnet developers. {methods_text.TRDNET_TITLE}. Software, " in markdown
    assert f"Please cite trdnet [{number}] with the version that wrote these outputs (7.7.7)" in markdown
    bib = methods_text.citation_bibtex(settings, software, simulated=False)
    entry = re.search(r"@software\{trdnet,\n(.*?)\n\}", bib, flags=re.DOTALL).group(1)
    assert "author = {{The trdnet developers}}" in entry and "version = {7.7.7}" in entry
    assert "title = {{trdnet}: brain-network connectivity" in entry and "url = {https://" in entry
    assert "version not recorded" in methods_text.citation_bibtex(settings, {}, simulated=False)


def test_citation_files_hold_the_reports_methods_paragraph(reports, cohort_out):
    logs = cohort_out / "logs"
    markdown = (logs / "CITATION.md").read_text()
    bib = (logs / "CITATION.bib").read_text()
    run = collect.find_runs(cohort_out)[0]
    paragraph, cited = methods_text.methods_paragraph(run.provenance["Settings"], run.provenance["Software"],
                                                      run.simulated, run.qc.get("tr"))
    # the same paragraph as the report page, numbered references in citation order, one BibTeX entry each
    assert f'<p class="methods">{paragraph}</p>' in reports["group"].read_text()
    assert html_module.unescape(paragraph) in markdown
    for number, key in enumerate(cited, start=1):
        assert f"{number}. {methods_text.REFERENCES[key]}" in markdown
    assert re.findall(r"^@\w+\{(\w+),", bib, flags=re.MULTILINE) == cited
    assert "simulated" in markdown


def test_reference_lines_come_from_the_bibtex_fields():
    assert methods_text.reference_text("fox2012") == (
        "Fox M.D. et al. (2012). Efficacy of transcranial magnetic stimulation targets for depression is related "
        "to intrinsic functional connectivity with the subgenual cingulate. Biological Psychiatry 72:595-603.")
    assert methods_text.reference_text("networkx").startswith("Hagberg A.A., Schult D.A., Swart P.J. (2008).")


def test_network_square_places_values():
    table = pd.DataFrame({"network_a": ["DMN", "DMN", "SN", "ECN", "DMN", "SN"],
                          "network_b": ["DMN", "SN", "SN", "ECN", "ECN", "ECN"],
                          "mean_z": [0.5, -0.2, 0.7, 0.9, 0.1, 0.3]})
    matrix, names = figures_qc.network_square(table)
    assert names == ["DMN", "SN", "ECN"]
    np.testing.assert_allclose(matrix, [[0.5, -0.2, 0.1], [-0.2, 0.7, 0.3], [0.1, 0.3, 0.9]])


def test_number_tags_exact_value_and_rounded_text():
    tag = html.number(0.123456, "mean_fd", 3, run="sub-01")
    parsed = browser.tagged_values(tag)[0]
    assert parsed["data-value"] == "0.123456" and parsed["text"] == "0.123" and parsed["data-run"] == "sub-01"
    assert browser.tagged_values(html.number(float("nan"), "x"))[0]["text"] == "n/a"


def _pixels(data_uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


def test_reused_glass_brain_draws_what_nilearn_draws_and_leaves_nothing_behind():
    import matplotlib.pyplot as plt
    from nilearn import plotting

    from trdnet.report import figures_brain
    from trdnet.report.plotting import to_data_uri

    rng = np.random.default_rng(0)
    coords = rng.uniform(-60, 60, size=(12, 3))
    first, second = (np.corrcoef(rng.standard_normal((12, 40))) for _ in range(2))
    networks = ["DMN"] * 4 + ["SN"] * 4 + ["ECN"] * 4
    uri_first = figures_brain.connectome(first, coords, networks)
    figures_brain.connectome(second, coords, networks)
    figures_brain.cohort_targets(coords[:3], ["red"] * 3, {"good": "red"})
    # nothing of the second connectome or of the cohort targets is left on the shared drawing
    np.testing.assert_array_equal(_pixels(figures_brain.connectome(first, coords, networks)), _pixels(uri_first))

    fig = plt.figure(figsize=(9.5, 3.4))
    matrix = first.astype(np.float32)
    np.fill_diagonal(matrix, 0)
    colors = [figures_brain.NETWORK_COLORS[n] for n in networks]
    plotting.plot_connectome(matrix, coords, node_color=colors, node_size=14, edge_threshold="98%",
                             edge_cmap="RdBu_r", edge_vmin=-1, edge_vmax=1, display_mode="lzr", figure=fig,
                             axes=[0.0, 0.1, 1.0, 0.9], colorbar=False, annotate=False)
    fig.legend(handles=[plt.Line2D([], [], ls="", marker="o", color=c, label=n)
                        for n, c in figures_brain.NETWORK_COLORS.items()],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    np.testing.assert_array_equal(_pixels(to_data_uri(fig)), _pixels(uri_first))


def test_a_participant_target_its_runs_no_longer_stand_behind_is_named_where_it_would_be(tmp_path):
    """Its record stays but no longer holds (a run processed again since): the report says so, from the records."""
    from trdnet.records import write_completion_record, write_participant_record

    prefix = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    runs = [f"sub-01_ses-{s}_task-rest_space-MNI152NLin2009cAsym" for s in ("1", "2")]
    for run in runs:
        write_completion_record(tmp_path, run, "sub-01", "digest", [], {"target_x": 0.0}, simulated=True)
    write_participant_record(tmp_path, prefix, runs, "digest", [], {}, simulated=True)
    assert participant.participant_block(tmp_path, "01") == ""  # valid, but no table to show: nothing
    write_completion_record(tmp_path, runs[1], "sub-01", "digest", [], {"target_x": 1.0}, simulated=True)
    block = participant.participant_block(tmp_path, "01")
    shown = re.search(rf'data-name="participant_withdrawn" data-run="{prefix}">([^<]*)<', block)
    assert shown and f"run {runs[1]} it joins was processed again" in html_module.unescape(shown.group(1)), block
