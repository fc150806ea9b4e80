"""Methods paragraph generated from the settings recorded in a run's sidecar, shown in the
reports and written as ``logs/CITATION.md`` and ``logs/CITATION.bib`` beside the outputs."""

from __future__ import annotations

import html
from pathlib import Path

from ..outputs import atomic_write_text, code_url
from ..strategies import strategies
from .html import esc

#: trdnet's own title and authors as ``CITATION.cff`` (top of the repository) gives them; its URL is the
#: ``Repository`` of pyproject.toml. A test checks the three agree with ``CITATION.cff``.
TRDNET_TITLE = ("trdnet: brain-network connectivity and personalised sgACC-anticorrelated DLPFC TMS targets from "
                "resting-state fMRI")
TRDNET_AUTHORS = ("The trdnet developers",)


def _trdnet_fields() -> dict:
    """BibTeX fields citing trdnet (without the version, which is the one that wrote the outputs)."""
    fields = {"author": " and ".join(f"{{{name}}}" for name in TRDNET_AUTHORS),  # braces: names of groups
              "title": TRDNET_TITLE.replace("trdnet:", "{trdnet}:", 1)}
    url = code_url()
    if url:
        fields["url"] = url
    return fields


#: Every reference the generated text can cite: key -> (BibTeX entry type, fields).
BIBTEX = {
    "trdnet": ("software", _trdnet_fields()),
    "fmriprep": ("article", {"author": "Esteban, Oscar and others", "year": "2019", "journal": "Nature Methods",
                             "title": "{fMRIPrep}: a robust preprocessing pipeline for functional {MRI}",
                             "volume": "16", "pages": "111--116"}),
    "nilearn": ("article", {"author": "Abraham, Alexandre and others", "year": "2014",
                            "title": "Machine learning for neuroimaging with scikit-learn",
                            "journal": "Frontiers in Neuroinformatics", "volume": "8", "pages": "14",
                            "note": "nilearn"}),
    "power2012": ("article", {"author": "Power, Jonathan D. and others", "year": "2012", "journal": "NeuroImage",
                              "title": "Spurious but systematic correlations in functional connectivity {MRI} "
                                       "networks arise from subject motion", "volume": "59",
                              "pages": "2142--2154"}),
    "power2014": ("article", {"author": "Power, Jonathan D. and others", "year": "2014", "journal": "NeuroImage",
                              "title": "Methods to detect, characterize, and remove motion artifact in resting "
                                       "state {fMRI}", "volume": "84", "pages": "320--341"}),
    "seitzman": ("article", {"author": "Seitzman, Benjamin A. and others", "year": "2020", "journal": "NeuroImage",
                             "title": "A set of functionally-defined brain regions with improved representation "
                                      "of the subcortex and cerebellum", "volume": "206", "pages": "116290"}),
    "dosenbach": ("article", {"author": "Dosenbach, Nico U. F. and others", "year": "2010", "journal": "Science",
                              "title": "Prediction of individual brain maturity using {fMRI}", "volume": "329",
                              "pages": "1358--1361"}),
    "raichle": ("article", {"author": "Raichle, Marcus E.", "year": "2011", "journal": "Brain Connectivity",
                            "title": "The restless brain", "volume": "1", "pages": "3--12",
                            "note": "node coordinates taken from code implementing it; unverified"}),
    "networkx": ("inproceedings", {"author": "Hagberg, Aric A. and Schult, Daniel A. and Swart, Pieter J.",
                                   "year": "2008", "booktitle": "Proceedings of the 7th Python in Science "
                                                                "Conference (SciPy 2008)",
                                   "title": "Exploring network structure, dynamics, and function using "
                                            "{NetworkX}"}),
    "fox2012": ("article", {"author": "Fox, Michael D. and others", "year": "2012", "journal": "Biological Psychiatry",
                            "title": "Efficacy of transcranial magnetic stimulation targets for depression is "
                                     "related to intrinsic functional connectivity with the subgenual cingulate",
                            "volume": "72", "pages": "595--603"}),
    "fox2013": ("article", {"author": "Fox, Michael D. and others", "year": "2013", "journal": "NeuroImage",
                            "title": "Identification of reproducible individualized targets for treatment of "
                                     "depression with {TMS} based on intrinsic connectivity", "volume": "66",
                            "pages": "151--160"}),
    "cash2021": ("article", {"author": "Cash, Robin F. H. and others", "year": "2021", "journal": "Human Brain Mapping",
                             "title": "Personalized connectivity-guided {DLPFC-TMS} for depression: advancing "
                                      "computational feasibility, precision and reproducibility", "volume": "42",
                             "pages": "4155--4172"}),
    "behzadi2007": ("article", {"author": "Behzadi, Yashar and Restom, Khaled and Liau, Joy and Liu, Thomas T.",
                                "year": "2007", "journal": "NeuroImage",
                                "title": "A component based noise correction method ({CompCor}) for {BOLD} and "
                                         "perfusion based {fMRI}", "volume": "37", "pages": "90--101"}),
    "cole2020": ("article", {"author": "Cole, Eleanor J. and others", "year": "2020",
                             "journal": "American Journal of Psychiatry",
                             "title": "Stanford Accelerated Intelligent Neuromodulation Therapy for "
                                      "treatment-resistant depression", "volume": "177", "pages": "716--726"}),
}



def _short_author(name: str) -> str:
    """``"Fox, Michael D."`` -> ``"Fox M.D."``."""
    family, _, given = name.partition(", ")
    initials = "".join(f"{part[0]}." for part in given.replace("-", " ").split())
    return f"{family} {initials}".strip()


def reference_text(key: str) -> str:
    """One reference of :data:`BIBTEX` as a line of text: ``Fox M.D. et al. (2012). Title. Journal 72:595-603.``"""
    kind, fields = BIBTEX[key]
    names = fields["author"].split(" and ")
    others = names[-1] == "others"
    authors = ", ".join(name.strip("{}") if name.startswith("{") else _short_author(name)
                        for name in names if name != "others") + (" et al." if others else "")
    venue = fields.get("journal") or fields.get("booktitle", "")
    if fields.get("volume"):
        venue += f" {fields['volume']}:{fields['pages'].replace('--', '-')}"
    if kind == "software":
        venue = "Software" + (f", {fields['url']}" if fields.get("url") else "")
    note = f" ({fields['note']})" if fields.get("note") else ""
    title = fields["title"].replace("{", "").replace("}", "")
    year = f" ({fields['year']})" if fields.get("year") else ""
    return f"{authors}{year}. {title}. {venue}{note}."


#: Citations used by the generated text (key -> reference line).
REFERENCES = {key: reference_text(key) for key in BIBTEX}

_ATLAS = {
    "seitzman2018": ("the Seitzman et al. regions bundled with nilearn", "seitzman"),
    "dosenbach2010": ("the Dosenbach et al. regions bundled with nilearn", "dosenbach"),
    "raichle_nodes": ("Raichle-style network nodes", "raichle"),
    "labels": ("a user-supplied labels atlas", None),
}

_METHOD = {
    "peak": ("the most negative voxel of the seed map inside the search region", "fox2012"),
    "cluster": ("the centre of mass of the largest cluster of the most negative {top:.0%} of negative "
                "seed-map voxels after {fwhm} smoothing", "fox2013"),
    "seedmap": ("a seedmap-weighted reference signal correlated with the search region, smoothed and "
                "clustered", "cash2021"),
    "hierarchical": ("hierarchical clustering of DLPFC and sgACC signals ({linkage} linkage on 1 - Spearman rho cut "
                     "at {cut:g}; minimum cluster {mincl:.0f} mm3; "
                     "from public code, unverified against the original supplement)", "cole2020"),
}


def methods_paragraph(settings: dict, software: dict, simulated: bool, tr: float | None = None,
                      roi: dict | None = None) -> tuple[str, list[str]]:
    """Describe what was done, from the settings actually used.

    Parameters
    ----------
    settings : dict
        ``Settings`` block of a run sidecar (:meth:`trdnet.config.Settings.to_dict`).
    software : dict
        ``Software`` block of a sidecar (package -> version).
    simulated : bool
        Whether the data were simulated.
    tr : float, optional
        Repetition time in seconds.
    roi : dict, optional
        For a run given as ROI time series: ``n_rois``, ``atlas``, ``space``
        and ``already_cleaned``. The paragraph then describes that input and
        no targeting.

    Returns
    -------
    html : str
        The paragraph with numbered citations ``[n]``.
    cited : list of str
        Reference keys in citation order (see :data:`REFERENCES`).
    """
    cited: list[str] = []

    def cite(key: str | None) -> str:
        if key is None:
            return ""
        if key not in cited:
            cited.append(key)
        return f"[{cited.index(key) + 1}]"

    den = settings.get("denoise", {})
    net = settings.get("networks", {})
    tgt = settings.get("targeting", {})
    versions = software or {}
    if roi is not None:
        return _roi_methods(roi, den, net, versions, tr, cite, bool(tgt.get("compare_gsr"))), cited
    source = ("simulated resting-state data (trdnet's built-in simulation, not a real scan)" if simulated
              else f"resting-state BOLD data preprocessed with fMRIPrep {cite('fmriprep')}")
    parts = [f"We analysed {source} in {esc(settings.get('space', 'n/a'))} space"
             + (f" (TR {tr:g} s)" if tr else "") + f" with trdnet {esc(versions.get('trdnet', '?'))} "
             f"{cite('trdnet')}, using nilearn {esc(versions.get('nilearn', '?'))} {cite('nilearn')}."]
    parts += _cleaning_sentences(den, cite)
    atlas_text, atlas_key = _ATLAS.get(net.get("atlas"), (esc(net.get("atlas", "?")), None))
    radius = net.get("roi_radius_mm")
    parts.append(
        f"Default mode (DMN), salience (SN) and executive control (ECN) networks were defined by {atlas_text} "
        f"{cite(atlas_key)}" + (f" ({radius} mm spheres)" if radius else "")
        + f"; ROI signals were correlated ({esc(net.get('connectivity', '?'))}) and within- and between-network "
        f"connectivity taken as the mean Fisher z over ROI pairs. Graph measures were computed with networkx "
        f"{esc(versions.get('networkx', '?'))} {cite('networkx')} on the strongest "
        f"{float(net.get('graph_density', 0)):.0%} of positive edges.")
    seed = tgt.get("seed_center_mm", ["?"] * 3)
    seed_text = (f"a {tgt.get('seed_radius_mm')} mm sphere at ({', '.join(str(v) for v in seed)}) mm"
                 + (" and its mirror" if tgt.get("seed_bilateral") else "")
                 if not tgt.get("seed_mask") else "a user-supplied mask")
    search_text = (f"{tgt.get('search_radius_mm')} mm spheres around the {', '.join(tgt.get('search_sites', []))} "
                   "sites" if not tgt.get("search_mask") else "a user-supplied mask")
    if tgt.get("restrict_to_grey_matter") and not tgt.get("search_mask"):
        search_text += f" restricted to grey matter (probability at least {tgt.get('grey_matter_threshold')})"
    parts.append(
        f"The subgenual cingulate (sgACC) seed was {seed_text} (MNI152 RAS mm) {cite('fox2012')}; every voxel's "
        f"Pearson correlation with the mean seed signal formed the seed map. The left-DLPFC search region was "
        f"the union of {search_text}.")
    methods = list(tgt.get("methods", []))
    described = []
    for m in methods:
        template, key = _METHOD.get(m, (m, None))
        fwhm = tgt.get("smoothing_fwhm_mm")
        described.append(f"{m} ("
                         + template.format(top=float(tgt.get("top_fraction", 0)),
                                           fwhm=f"{fwhm} mm FWHM" if fwhm else "no",
                                           mincl=float(tgt.get("min_cluster_mm3", 0)),
                                           linkage=tgt.get("hierarchical_linkage", "average"),
                                           cut=float(tgt.get("hierarchical_distance_threshold", 0.5)))
                         + f") {cite(key)}")
    if described:
        parts.append("Personalised targets were selected by " + "; ".join(described)
                     + f"; the first ({esc(methods[0])}) is the primary target.")
    halves = (f"split halves of the retained volumes (when each half has at least {tgt.get('min_half_volumes')} "
              "volumes)")
    if not tgt.get("reliability"):
        parts.append("Target reliability was not estimated (reliability switched off): no bootstrap or split-half "
                     "comparison was run.")
    elif not tgt.get("n_bootstrap"):
        parts.append(
            "No bootstrap was run (0 resamples asked for), so target reliability was not estimated: each target's "
            f"reliability is reported as unknown. The targets of {halves} were still compared. "
            f"Random seed: {settings.get('random_state')}.")
    else:
        block = tgt.get("bootstrap_block_s")
        parts.append(
            f"Target reliability was estimated from {tgt.get('n_bootstrap')} circular block-bootstrap resamples "
            f"of the retained volumes (block {block if block else 'one high-pass period'}"
            f"{' s' if block else ''}) and from {halves}; the word is good when the 95% bootstrap radius is "
            f"under {tgt.get('good_r95_mm')} mm and the split-half distance under {tgt.get('good_split_half_mm')} "
            f"mm, fair when the radius is under {tgt.get('fair_r95_mm')} mm, poor otherwise (trdnet's documented "
            f"thresholds, not clinical standards). Random seed: {settings.get('random_state')}.")
    if tgt.get("compare_gsr") and described:
        parts.append(_gsr_both_sentence(den, "targets"))
    return " ".join(parts), cited


def _gsr_both_sentence(den: dict, outputs: str) -> str:
    """What ``--gsr both`` computed: the run's outputs with the settings' choice, one table with the other."""
    used = den.get("global_signal", "none") != "none"
    other = "without" if used else "with"
    if outputs == "targets":
        return (f"With --gsr both, each run was also cleaned {other} global signal regression and the personalised "
                f"targets recomputed from it (no reliability estimate for them): all outputs use global "
                f"signal regression {'on' if used else 'off'}; the targets table adds the other choice's targets "
                "(other_gsr_x/y/z, other_gsr) and their distance from the main ones (gsr_distance_mm).")
    return (f"With --gsr both, each run was also cleaned {other} global signal regression: all outputs use "
            f"it {'on' if used else 'off'}, and the network table of the other choice is written as "
            f"desc-gsr{'off' if used else 'on'}_networks.tsv.")


#: Number of motion regressors of each ``denoise.motion`` choice (nilearn's load_confounds).
_MOTION_COUNT = {"basic": 6, "power2": 12, "derivatives": 12, "full": 24}

#: How each CompCor choice of ``denoise.compcor`` reads in the methods text.
_COMPCOR = {
    "anat_combined": "anatomical CompCor components from the combined white-matter and CSF mask",
    "anat_separated": "anatomical CompCor components from separate white-matter and CSF masks",
    "temporal": "temporal CompCor components",
    "temporal_anat_combined": "temporal and anatomical (combined white-matter and CSF mask) CompCor components",
    "temporal_anat_separated": "temporal and anatomical (separate white-matter and CSF masks) CompCor components",
}


def _cleaning_sentences(den: dict, cite) -> list[str]:
    """How the runs were cleaned (named strategy, confounds, filter, censoring)."""
    motion = den.get("motion", "?")
    confounds = [f"{_MOTION_COUNT.get(motion, '?')} motion parameters ({esc(motion)})"]
    if den.get("wm_csf", "none") != "none":
        confounds.append(f"{den['wm_csf']} white-matter and CSF signals")
    compcor = den.get("compcor", "none")
    if compcor != "none":
        count = den.get("n_compcor", "all")
        confounds.append(("the " if count == "all" else f"{count} ") + _COMPCOR.get(compcor, f"{compcor} CompCor")
                         + (" that fMRIPrep kept (50% of the variance)" if count == "all" else "")
                         + f" {cite('behzadi2007')} with fMRIPrep's cosine regressors")
    if den.get("global_signal", "none") != "none":
        confounds.append(f"{den['global_signal']} global signal (global signal regression)")
    strategy = den.get("strategy")
    source = strategies().get(strategy, {}).get("source")
    named = ("" if not strategy else "Confounds followed trdnet's default denoising strategy. "
             if strategy == "default" else f"Confounds followed the {esc(strategy)} denoising strategy"
             + (f" ({esc(source)})" if source else "") + ". ")
    parts = [(named + "Each run was cleaned in one projection: " + ", ".join(confounds) + " were regressed out"
              + ("" if den.get("global_signal", "none") != "none" else " (no global signal regression)")
              + (", the signals detrended" if den.get("detrend") else "")
              + f", and band-pass filtered ({den.get('high_pass', '?')}-{den.get('low_pass', '?')} Hz, "
              f"{esc(den.get('filter', '?'))} order {den.get('butterworth_order', '?')}).")]
    if den.get("scrub"):
        parts.append(
            f"Volumes with framewise displacement above {den.get('fd_threshold')} mm {cite('power2012')} or "
            f"standardised DVARS above {den.get('std_dvars_threshold')} were censored, together with retained "
            f"segments shorter than {den.get('scrub_min_segment')} volumes {cite('power2014')}; runs with fewer "
            f"than {den.get('min_volumes')} volumes or {den.get('min_minutes')} minutes left were not analysed.")
    return parts


def _roi_methods(roi: dict, den: dict, net: dict, versions: dict, tr, cite, compare_gsr=False) -> str:
    """The methods of a run given as ROI time series: the input, its cleaning (or not), the networks."""
    parts = [f"We analysed parcel-level ROI time series ({roi.get('n_rois', '?')} ROIs, atlas "
             f"{esc(roi.get('atlas', '?'))}, {esc(roi.get('space') or 'space not stated')})"
             + (f" (TR {tr:g} s)" if tr else "") + f" with trdnet {esc(versions.get('trdnet', '?'))} "
             f"{cite('trdnet')}, using nilearn {esc(versions.get('nilearn', '?'))} {cite('nilearn')}."]
    if roi.get("already_cleaned"):
        parts.append("The signals were declared already cleaned and analysed as given: trdnet applied no "
                     "detrending, filtering, confound regression or censoring.")
    else:
        parts.append("The run's fMRIPrep-named confounds were selected with nilearn's load_confounds and the "
                     "ROI signals cleaned with the same operator as voxel data.")
        parts += _cleaning_sentences(den, cite)
    parts.append(
        "Default mode (DMN), salience (SN) and executive control (ECN) networks were the ROIs the labels table "
        f"assigns to them; ROI signals were correlated ({esc(net.get('connectivity', '?'))}) and within- and "
        "between-network connectivity taken as the mean Fisher z over ROI pairs. Graph measures were computed "
        f"with networkx {esc(versions.get('networkx', '?'))} {cite('networkx')} on the strongest "
        f"{float(net.get('graph_density', 0)):.0%} of positive edges. No TMS target was computed: that needs "
        "voxel-wise data.")
    if compare_gsr and not roi.get("already_cleaned"):
        parts.append(_gsr_both_sentence(den, "networks"))
    return " ".join(parts)


def roi_summary(run) -> dict | None:
    """The ``roi`` argument of :func:`methods_paragraph` for a processed run, or None for a voxel-wise run.

    Parameters
    ----------
    run : trdnet.report.collect.RunOutputs
    """
    if not run.roi_input:
        return None
    denoising = run.sidecar("qc.json").get("Denoising", {})
    relmat = run.sidecar("*_relmat.json")
    return {"n_rois": len(relmat.get("ROIs", {}).get("roi", [])), "atlas": relmat.get("Atlas", ""),
            "space": run.provenance.get("Space", ""), "already_cleaned": bool(denoising.get("already_cleaned"))}


def references_html(cited: list[str]) -> str:
    """Numbered reference list for :func:`methods_paragraph` citations."""
    items = "".join(f"<li>{esc(REFERENCES[k])}</li>" for k in cited)
    return f'<ol class="refs">{items}</ol>'


def software_html(software: dict) -> str:
    """Software versions as one line."""
    return "<p class=\"note\">Software: " + ", ".join(
        f"{esc(k)} <code>{esc(v)}</code>" for k, v in sorted((software or {}).items())) + "</p>"


def citation_markdown(settings: dict, software: dict, simulated: bool, tr: float | None = None,
                      roi: dict | None = None) -> str:
    """``CITATION.md``: the methods paragraph of :func:`methods_paragraph`, its numbered references (trdnet
    itself among them) and the trdnet version that wrote the outputs.

    Parameters are those of :func:`methods_paragraph`; the text is the same, unescaped.
    """
    paragraph, cited = methods_paragraph(settings, software, simulated, tr, roi)
    references = "\n".join(f"{i}. {REFERENCES[key]}" for i, key in enumerate(cited, start=1))
    return (f"# Methods\n\n{html.unescape(paragraph)}\n\n## References\n\n{references}\n\n"
            f"Please cite trdnet [{cited.index('trdnet') + 1}] with the version that wrote these outputs "
            f"({_trdnet_version(software)}) and the methods it implemented for them. "
            "BibTeX entries of these references: `CITATION.bib`.\n")


def _trdnet_version(software: dict) -> str:
    return str((software or {}).get("trdnet") or "version not recorded")


def citation_bibtex(settings: dict, software: dict, simulated: bool, tr: float | None = None,
                    roi: dict | None = None) -> str:
    """``CITATION.bib``: BibTeX entries of the references :func:`methods_paragraph` cites, in citation order.

    trdnet's own entry (``@software{trdnet, ...}``) carries the version the
    ``software`` record names, i.e. the one that wrote the outputs.
    """
    _, cited = methods_paragraph(settings, software, simulated, tr, roi)
    entries = []
    for key in cited:
        kind, fields = BIBTEX[key]
        if key == "trdnet":
            fields = {**fields, "version": _trdnet_version(software)}
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
        entries.append(f"@{kind}{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


def write_citation_files(logs_dir, settings: dict, software: dict, simulated: bool,
                         tr: float | None = None, roi: dict | None = None) -> list[Path]:
    """Write ``CITATION.md`` and ``CITATION.bib`` into ``logs_dir`` (atomically).

    Parameters
    ----------
    logs_dir : str or Path
        Usually ``<output>/logs``.
    settings, software, simulated, tr, roi
        As for :func:`methods_paragraph` (``roi`` from :func:`roi_summary`).

    Returns
    -------
    list of pathlib.Path
        The two files.
    """
    logs_dir = Path(logs_dir)
    return [atomic_write_text(logs_dir / "CITATION.md", citation_markdown(settings, software, simulated, tr, roi)),
            atomic_write_text(logs_dir / "CITATION.bib", citation_bibtex(settings, software, simulated, tr, roi))]
