import nbformat as nbf
def nb(cells, path):
    n = nbf.v4.new_notebook()
    n.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "language_info": {"name": "python"}}
    n.cells = [nbf.v4.new_code_cell(c) if not c.startswith("#md ") else nbf.v4.new_markdown_cell(c[4:]) for c in cells]
    for c in []:
        c.pop("id", None)
    nbf.write(n, path)

nb([
"#md Synthetic data for the browser tests: no model needed.",
"""import numpy as np
from widgets import ThoughtStepper, LensView, ConceptLab, LatentMap
from widgets.demo import DemoSpace, demo_lens, demo_trajectory

tr = demo_trajectory(n=24, d=64, seed=0)
rng = np.random.default_rng(1)
bg = (tr.vectors()[rng.integers(0, len(tr), 3000)] + rng.normal(0, 4, (3000, 64))).astype(np.float32)""",
"""stepper = ThoughtStepper(tr, background=bg, interval_ms=120)
stepper""",
"""lens, trace = demo_lens(n_layers=8)
lensview = LensView(lens, trace)
lensview""",
"""lab = ConceptLab(DemoSpace())
lab""",
"""big = np.random.default_rng(2).normal(0, 1, (20000, 64)).astype(np.float32)
m = LatentMap(big, labels=[f"tok{i}" for i in range(len(big))], method="pca", height=420)
m.add(tr, color_by="layer")
m""",
], "tests/browser/notebooks/widgets_synthetic.ipynb")

nb([
"#md The real default model through the widgets (needs `explorer.load_model()`).",
"""import explorer
from widgets import ThoughtStepper, LensView, ConceptLab
m = explorer.load_model()
tr = m.trace("The capital of France is")
lens = m.logit_lens(tr)
traj = m.annotate(tr.trajectory(position=-1), k=8).with_dynamics()""",
"""stepper = ThoughtStepper(traj)
stepper""",
"""lensview = LensView(lens, tr)
lensview""",
"""lab = ConceptLab(m.token_space)
lab""",
], "tests/browser/notebooks/widgets_model.ipynb")

nb([
"#md GraphView linked to a stepper, and GraphCompare, on made-up masses over a real ProsQA problem (no model).",
"""import ipywidgets as W
from widgets import GraphCompare, GraphView, ThoughtStepper, link_steps
from widgets.demo import demo_graph_run
from explorer.tasks.prosqa import VALIDATION, load
problem = load(VALIDATION)[0]
grun = demo_graph_run(problem, "coconut", steps=6)
gstepper = ThoughtStepper(grun.trajectory)
gview = GraphView(grun, size=(440, 320))
glinks = link_steps(gstepper, gview)
W.VBox([gstepper, gview])""",
"""def runner(models, p):
    return [demo_graph_run(p, e, steps=4, seed=i) for i, e in enumerate(models)]
cmp = GraphCompare(["coconut", "cot", "recurrent"], problem, runner=runner, size=(300, 220))
cmp""",
], "tests/browser/notebooks/widgets_graph.ipynb")

nb([
"#md PatchView on the shipped byte entropy model (a tiny random one until it ships).",
"""import explorer
from explorer.models.registry import lookup
from widgets import PatchView
if lookup("byte-entropy") is not None:
    bm = explorer.load_model("byte-entropy", device="cpu")
else:
    from explorer.model import Model
    from explorer.models.build import build_base_model
    from explorer.patches.tokenizer import build_byte_tokenizer
    tok = build_byte_tokenizer()
    bm = Model(build_base_model(tok, n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=1, arch="llama"), tok, name="tiny")
pv = PatchView(bm, "Daenerys Targaryen is the mother of dragons.\\nNaïve café — 日本語 🙂\\n", width=640)
pv""",
], "tests/browser/notebooks/widgets_patches.ipynb")

nb([
"#md ThoughtTree: beam search over thoughts with the Base-LCM and the fact checker, on a real ProsQA problem.",
"""from explorer.semantic.prosqa import claim, context_of, solve
from explorer.semantic.processors import FactChecker, LCMProposer
from explorer.tasks.prosqa import VALIDATION, load
from widgets import ThoughtTree
problem = load(VALIDATION)[0]
proposer = LCMProposer()
solved = solve(problem, "beam", 2, proposer=proposer)
tt = ThoughtTree(solved.tree, context=context_of(problem), proposer=proposer, valuers=[FactChecker(claim)], k=2)
tt""",
], "tests/browser/notebooks/widgets_tree.ipynb")

nb([
"#md CorpusMap: 20,000 synthetic rows in 3 clusters as a corpus-capture-like Arrow table (no model).",
"""import numpy as np, pyarrow as pa
from widgets import CorpusMap
rng = np.random.default_rng(0)
n, d = 20_000, 32
label = rng.integers(0, 3, n)
centres = rng.normal(0, 8, (3, d))
vectors = (centres[label] + rng.normal(0, 1, (n, d))).astype(np.float32)
table = pa.table({"doc": label.astype(np.int64), "text": [f"document {i} of cluster {'abc'[i]}" for i in label],
                  "position": np.arange(n, dtype=np.int32), "token": [f"tok{i % 97}" for i in range(n)],
                  "point": ["layer.3"] * n, "label": np.array(list("abc"))[label],
                  "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), d)})""",
"""cmap = CorpusMap(table, color="label", height=480)
path = cmap.add_trajectory(np.linspace(centres[0], centres[1], 8).astype(np.float32), name="a to b")
cmap""",
], "tests/browser/notebooks/widgets_corpus_map.ipynb")
