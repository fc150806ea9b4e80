"""Methods paragraph generated from the settings recorded in a run's sidecar."""

from __future__ import annotations

from .html import esc

#: Citations used by the generated text (key -> reference).
REFERENCES = {
    "fmriprep": "Esteban O. et al. (2019). fMRIPrep: a robust preprocessing pipeline for functional MRI. "
                "Nature Methods 16:111-116.",
    "nilearn": "Abraham A. et al. (2014). Machine learning for neuroimaging with scikit-learn. "
               "Frontiers in Neuroinformatics 8:14 (nilearn).",
    "power2012": "Power J.D. et al. (2012). Spurious but systematic correlations in functional connectivity MRI "
                 "networks arise from subject motion. NeuroImage 59:2142-2154.",
    "power2014": "Power J.D. et al. (2014). Methods to detect, characterize, and remove motion artifact in "
                 "resting state fMRI. NeuroImage 84:320-341.",
    "seitzman": "Seitzman B.A. et al. (2020). A set of functionally-defined brain regions with improved "
                "representation of the subcortex and cerebellum. NeuroImage 206:116290.",
    "dosenbach": "Dosenbach N.U.F. et al. (2010). Prediction of individual brain maturity using fMRI. "
                 "Science 329:1358-1361.",
    "raichle": "Raichle M.E. (2011). The restless brain. Brain Connectivity 1:3-12 "
               "(node coordinates taken from code implementing it; unverified).",
    "networkx": "Hagberg A.A., Schult D.A., Swart P.J. (2008). Exploring network structure, dynamics, and "
                "function using NetworkX. Proceedings of SciPy 2008.",
    "fox2012": "Fox M.D. et al. (2012). Efficacy of transcranial magnetic stimulation targets for depression "
               "is related to intrinsic functional connectivity with the subgenual cingulate. "
               "Biological Psychiatry 72:595-603.",
    "fox2013": "Fox M.D. et al. (2013). Identification of reproducible individualized targets for treatment of "
               "depression with TMS based on intrinsic connectivity. NeuroImage 66:151-160.",
    "cash2021": "Cash R.F.H. et al. (2021). Personalized connectivity-guided DLPFC-TMS for depression: "
                "advancing computational feasibility, precision and reproducibility. "
                "Human Brain Mapping 42:4155-4172.",
    "cole2020": "Cole E.J. et al. (2020). Stanford Accelerated Intelligent Neuromodulation Therapy for "
                "treatment-resistant depression. American Journal of Psychiatry 177:716-726.",
}

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


def methods_paragraph(settings: dict, software: dict, simulated: bool, tr: float | None = None) -> tuple[str, list[str]]:
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
    source = ("simulated resting-state data (trdnet's built-in simulation, not a real scan)" if simulated
              else f"resting-state BOLD data preprocessed with fMRIPrep {cite('fmriprep')}")
    parts = [f"We analysed {source} in {esc(settings.get('space', 'n/a'))} space"
             + (f" (TR {tr:g} s)" if tr else "") + f" with trdnet {esc(versions.get('trdnet', '?'))}, "
             f"using nilearn {esc(versions.get('nilearn', '?'))} {cite('nilearn')}."]
    confounds = [f"{den.get('motion', '?')} motion parameters"]
    if den.get("wm_csf", "none") != "none":
        confounds.append(f"{den['wm_csf']} white-matter and CSF signals")
    if den.get("global_signal", "none") != "none":
        confounds.append(f"{den['global_signal']} global signal (global signal regression)")
    else:
        confounds.append("no global signal regression")
    text = ("Each run was cleaned in one projection: " + ", ".join(confounds) + " were regressed out"
            + (", the signals detrended" if den.get("detrend") else "")
            + f", and band-pass filtered ({den.get('high_pass', '?')}-{den.get('low_pass', '?')} Hz, "
            f"{esc(den.get('filter', '?'))} order {den.get('butterworth_order', '?')}).")
    parts.append(text)
    if den.get("scrub"):
        parts.append(
            f"Volumes with framewise displacement above {den.get('fd_threshold')} mm {cite('power2012')} or "
            f"standardised DVARS above {den.get('std_dvars_threshold')} were censored, together with retained "
            f"segments shorter than {den.get('scrub_min_segment')} volumes {cite('power2014')}; runs with fewer "
            f"than {den.get('min_volumes')} volumes or {den.get('min_minutes')} minutes left were not analysed.")
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
    if tgt.get("reliability"):
        block = tgt.get("bootstrap_block_s")
        parts.append(
            f"Target reliability was estimated from {tgt.get('n_bootstrap')} circular block-bootstrap resamples "
            f"of the retained volumes (block {block if block else 'one high-pass period'}"
            f"{' s' if block else ''}) and from split halves; the word is good when the 95% bootstrap radius is "
            f"under {tgt.get('good_r95_mm')} mm and the split-half distance under {tgt.get('good_split_half_mm')} "
            f"mm, fair when the radius is under {tgt.get('fair_r95_mm')} mm, poor otherwise (trdnet's documented "
            f"thresholds, not clinical standards). Random seed: {settings.get('random_state')}.")
    return " ".join(parts), cited


def references_html(cited: list[str]) -> str:
    """Numbered reference list for :func:`methods_paragraph` citations."""
    items = "".join(f"<li>{esc(REFERENCES[k])}</li>" for k in cited)
    return f'<ol class="refs">{items}</ol>'


def software_html(software: dict) -> str:
    """Software versions as one line."""
    return "<p class=\"note\">Software: " + ", ".join(
        f"{esc(k)} <code>{esc(v)}</code>" for k, v in sorted((software or {}).items())) + "</p>"
