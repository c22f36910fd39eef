"""The explorer's face in JupyterLab / Notebook 7: maps (one of a whole corpus, a million points in WebGL), a stepper, a concept lab, a lens view, a graph view, a patch view and a thought tree.

All widgets show :class:`explorer.Trajectory`-shaped data and hold no model logic. Everything the
browser loads comes from installed packages (anywidget ESM written by hand, plotly's bundled
widget); nothing is fetched from a CDN.
"""
from .concept_lab import ConceptLab
from .corpus_map import CorpusMap
from .graph_view import GraphCompare, GraphView, link_steps
from .latent_map import LatentMap
from .lens import LensView
from .patch_view import PatchView
from .stepper import ThoughtStepper
from .thought_tree import ThoughtTree

__all__ = ["LatentMap", "CorpusMap", "ThoughtStepper", "ConceptLab", "LensView", "GraphView", "GraphCompare", "link_steps", "PatchView", "ThoughtTree"]
