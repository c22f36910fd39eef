"""ProsQA: the generator's constraints (checked independently), determinism, files, evaluation."""
from __future__ import annotations

import json
import re
from collections import Counter, deque
from pathlib import Path

import pytest

from explorer.errors import InputError, SaveFileError
from explorer.tasks.prosqa import prompts as ev
from explorer.tasks.prosqa.generate import (CONCEPTS, PERSONS, GeneratorConfig, generate, load, main, statement,
                                            vocabulary_from, write)

from explorer.tasks.prosqa import VALIDATION as VALID  # noqa: E402  (shipped with the package)
FIELDS = {"question", "answer", "steps", "idx_to_symbol", "edges", "root", "target", "neg_target"}


def bfs(n, edges, src):
    adj = {i: [] for i in range(n)}
    for a, b in edges:
        adj[a].append(b)
    dist, q = {src: 0}, deque([src])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    return dist


@pytest.fixture(scope="module")
def problems():
    return generate(150, seed=0)


def test_every_constraint_holds(problems):
    hops_seen = set()
    for p in problems:
        assert set(p) == FIELDS
        sym, edges, root, tgt, neg = p["idx_to_symbol"], p["edges"], p["root"], p["target"], p["neg_target"]
        n = len(sym)
        assert 14 <= n <= 28
        assert len(set(sym)) == n and all(s in PERSONS or s in CONCEPTS for s in sym)
        assert all(0 <= a < b < n for a, b in edges), "edges run from lower to higher index"
        assert len({tuple(e) for e in edges}) == len(edges)
        indeg = {b for _, b in edges}
        for i, s in enumerate(sym):  # people are exactly the parentless nodes
            assert (s in PERSONS) == (i not in indeg)
        assert root in (0, 1) and sym[0] in PERSONS and sym[1] in PERSONS
        d_root, d_other = bfs(n, edges, root), bfs(n, edges, 1 - root)
        assert tgt in d_root and neg not in d_root, "exactly one of A/B is reachable from X"
        assert neg in d_other and tgt not in d_other
        assert 3 <= d_root[tgt] <= 6
        hops_seen.add(d_root[tgt])
        assert not any(a in (tgt, neg) for a, _ in edges), "answers are leaves"
        # the question: every edge's statement, then "Is X a A or B?"
        m = re.fullmatch(r"(.*) Is (\w+) a (\w+) or (\w+)\?", p["question"])
        assert m and m.group(2) == sym[root] and {m.group(3), m.group(4)} == {sym[tgt], sym[neg]}
        stmts = re.findall(r"[^.]+\.", m.group(1))
        expect = [(f"{sym[a]} is a {sym[b]}." if sym[a] in PERSONS else f"Every {sym[a]} is a {sym[b]}.") for a, b in edges]
        assert [s.strip() for s in stmts] == expect
        # the steps: one shortest path root -> target, as statements
        assert len(p["steps"]) == d_root[tgt]
        node = root
        for s in p["steps"]:
            mm = re.fullmatch(r"(?:Every )?(\w+) is a (\w+)\.", s)
            a, b = sym.index(mm.group(1)), sym.index(mm.group(2))
            assert a == node and [a, b] in edges and s in expect
            node = b
        assert node == tgt
        assert p["answer"] == f"{sym[root]} is a {sym[tgt]}."
    assert hops_seen == {3, 4, 5, 6} or hops_seen >= {3, 4, 5}


def test_seeded_and_deterministic():
    a, b, c = generate(12, seed=7), generate(12, seed=7), generate(12, seed=8)
    assert a == b
    assert a != c


def test_extra_reachability_queries_are_true_and_leave_the_problem_alone():
    plain, extra = generate(40, seed=5), generate(40, seed=5, cfg=GeneratorConfig(queries=6))
    assert all("queries" not in p for p in plain)
    hops = set()
    assert {k: extra[0][k] for k in FIELDS} == plain[0]  # queries are drawn after their problem
    assert sum(len(q["queries"]) for q in extra) >= 0.8 * 6 * len(extra)  # a few skipped, none added
    for q in extra:
        sym, n = q["idx_to_symbol"], len(q["idx_to_symbol"])
        assert len(q["queries"]) <= 6
        for item in q["queries"]:
            m = re.fullmatch(r"Is (\w+) a (\w+) or (\w+)\?", item["question"])
            assert m, item
            person, a, b = m.groups()
            yes = item["answer"][len(person) + 6:-1]
            assert item["answer"] == f"{person} is a {yes}." and yes in (a, b) and a != b
            reach = bfs(n, q["edges"], sym.index(person))
            no = b if yes == a else a
            assert sym.index(yes) in reach and sym.index(no) not in reach and not no[0].isupper()
            hops.add(reach[sym.index(yes)])
    assert {1, 2, 3} <= hops  # short chains come up as well as long ones
    assert main([str(Path(__import__("tempfile").mkdtemp()) / "q.json"), "--n", "2", "--queries", "3"]) == 0
    with pytest.raises(InputError, match="queries"):
        generate(1, cfg=GeneratorConfig(queries=-1))


def test_lookup_questions_are_statements_of_the_graph():
    from explorer.tasks.prosqa.tokenizer import build_tokenizer

    tok = build_tokenizer()
    for q in generate(20, seed=6, cfg=GeneratorConfig(queries=2, lookups=4)):
        sym = q["idx_to_symbol"]
        said = {statement(sym, a, b) for a, b in q["edges"]}
        looks = [x for x in q["queries"] if x["question"].startswith("What is ")]
        assert len(looks) == 4 and all(x["question"].startswith("Is ") for x in q["queries"][:-4])
        for item in looks:
            m = re.fullmatch(r"What is (every )?(\w+)\?", item["question"])
            assert m and item["answer"] in said
            assert item["answer"].startswith("Every " + m.group(2) if m.group(1) else m.group(2) + " is a")
            assert tok.unk_token_id not in tok(item["question"] + " " + item["answer"])["input_ids"]  # all known words


def test_counting_names_does_not_tell_the_answer():
    """The option named more often (a leaf is named once per parent) must be right about as often as
    wrong, in the ProsQA questions and in the extra ones. Before the fix it was right in ~70 % of
    generated problems and wrong in ~70 % of the real validation set: a shortcut that inverts."""
    def more_named_is_right(edges: list, sym: list, right: str, wrong: str) -> bool | None:
        count = Counter(sym[b] for _a, b in edges)
        return None if count[right] == count[wrong] else count[right] > count[wrong]

    main_q, extra_q = [], []
    for p in generate(240, seed=11, cfg=GeneratorConfig(queries=3)):
        sym, edges = p["idx_to_symbol"], p["edges"]
        main_q.append(more_named_is_right(edges, sym, sym[p["target"]], sym[p["neg_target"]]))
        for item in p["queries"]:
            a, b = re.fullmatch(r"Is \w+ a (\w+) or (\w+)\?", item["question"]).groups()
            yes = item["answer"].split(" is a ")[1][:-1]
            extra_q.append(more_named_is_right(edges, sym, yes, b if yes == a else a))
    for votes in (main_q, extra_q):
        decided = [v for v in votes if v is not None]
        assert len(decided) > 0.4 * len(votes)                    # the counts differ often enough to matter
        assert 0.4 <= sum(decided) / len(decided) <= 0.6, sum(decided) / len(decided)


def test_audit_counts_each_rule_on_a_hand_made_graph(capsys):
    from explorer.cli import main as cli
    from explorer.tasks.prosqa.audit import audit, rule_scores

    # Tom → a → b (target, named once); Rex → c → d (wrong, named twice: by c and by Rex)
    sym = ["Tom", "Rex", "a", "b", "c", "d"]
    edges = [[0, 2], [2, 3], [1, 4], [4, 5], [1, 5]]
    p = {"question": "Tom is a a. Every a is a b. Rex is a c. Every c is a d. Rex is a d. Is Tom a d or b?",
         "answer": "Tom is a b.", "steps": [], "idx_to_symbol": sym, "edges": edges, "root": 0, "target": 3,
         "neg_target": 5, "queries": [{"question": "What is Rex?", "answer": "Rex is a c."},
                                      {"question": "What is Tom?", "answer": "Tom is a a."}]}
    scores = rule_scores(p)
    assert scores["named more often"] == (1, 2) and scores["more ancestors"] == (2, 2)
    assert scores["first option"] == (0.0, 1.0) and scores["named last"][0] < scores["named last"][1]
    result = audit([p])
    assert result["named more often"] == {"right": 0.0, "n": 1}
    assert result["more ancestors"] == {"right": None, "n": 0}           # a tie abstains
    # after a person: a, c, d once each → "a" (first of the tie): right for Tom, not for Rex
    assert result["lookup: most-named concept"] == {"right": 0.5, "n": 2}
    p["queries"][1] = {"question": "What is every c?", "answer": "Every c is a d."}       # after a concept: b, d → b
    assert audit([p])["lookup: most-named concept"] == {"right": 0.0, "n": 2}
    with pytest.raises(InputError, match="graph"):
        audit([{"question": "q", "answer": "a", "steps": []}])
    # the real validation set: the option named more often is the wrong one about 3 times in 4
    assert cli(["prosqa", "audit", str(VALID), "--json"]) == 0
    real = json.loads(capsys.readouterr().out)[str(VALID)]
    assert real["named more often"]["n"] == 202 and real["named more often"]["right"] < 0.3
    from explorer.tasks.prosqa.audit import graph_stats

    assert graph_stats([p]) == {"nodes": 6, "statements": 5, "people": 2, "parents per concept": 1.25,
                                "concepts with 3+ parents": 0.0, "answer hops": 0, "nodes the person reaches": 3,
                                "wrong option: hops from its person": 1}
    # the real set's graphs are denser than the generator's (docs/recurrent.md): a distribution shift
    assert cli(["prosqa", "audit", str(VALID), "--graphs", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)[str(VALID)]
    assert stats["statements"] > 35 and 2.4 < stats["people"] < 2.6 and stats["parents per concept"] > 1.7
    assert cli(["prosqa", "audit", "/nonexistent.json", "--graphs"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_config_is_checked():
    with pytest.raises(InputError, match="min_nodes"):
        generate(1, cfg=GeneratorConfig(min_nodes=30, max_nodes=20))


def test_statement_phrasing_matches_the_validation_file():
    data = json.loads(VALID.read_text())[:40]
    for p in data:
        sym = p["idx_to_symbol"]
        said = " ".join(statement(sym, a, b) for a, b in p["edges"])
        ours = sorted(s.strip() for s in re.findall(r"[^.]+\.", said))
        assert ours == sorted(s.strip() for s in re.findall(r"[^.]+\.", p["question"].rsplit(" Is ", 1)[0]))
    people, concepts = vocabulary_from(VALID)
    assert tuple(people) == PERSONS and tuple(concepts) == CONCEPTS


def test_write_load_and_cli(tmp_path):
    path = write(generate(3, seed=1), tmp_path / "d" / "train.json")
    assert load(path) == generate(3, seed=1)
    assert not list(path.parent.glob(".*tmp"))
    assert main([str(tmp_path / "cli.json"), "--n", "4", "--seed", "2"]) == 0
    assert load(tmp_path / "cli.json") == generate(4, seed=2)
    (tmp_path / "bad.json").write_text("{\"x\": 1}")
    with pytest.raises(SaveFileError, match="generate one"):
        load(tmp_path / "bad.json")
    with pytest.raises(SaveFileError, match="does not exist"):
        load(tmp_path / "missing.json")


def test_fixed_hop_sets_are_the_documented_commands(tmp_path):
    """fixed_hop_sets() is what docs/recurrent.md's generate command writes, hop count by hop count,
    and every answer is exactly that many hops away."""
    from explorer.tasks.prosqa.generate import fixed_hop_sets

    sets = fixed_hop_sets(6, hops=(1, 3))
    for h in (1, 3):
        assert main([str(tmp_path / f"h{h}.json"), "--n", "6", "--seed", str(990 + h), "--min-nodes", "8",
                     "--max-nodes", "14", "--min-hops", str(h), "--max-hops", str(h), "--layout", "sparse",
                     "--max-extra-persons", "3", "--max-parents", "3"]) == 0
        assert load(tmp_path / f"h{h}.json") == sets[h]
        for p in sets[h]:
            assert len(p["steps"]) == h and 8 <= len(p["idx_to_symbol"]) <= 14
            assert bfs(len(p["idx_to_symbol"]), p["edges"], p["root"])[p["target"]] == h


def test_answer_parsing_as_in_coconut():
    assert ev.parse_answer("Tom is a x.\nEvery x is a y.\n### Tom is a y.") == "Tom is a y."
    assert ev.parse_answer("### 1,000 ") == "1000"
    assert ev.parse_cot("a\nb\n### c") == "a\nb"
    assert ev.is_correct("### Tom is a y.", "Tom is a y.")
    assert not ev.is_correct("### Tom is a z.", "Tom is a y.")


def test_evaluate_with_an_engine(problems):
    from explorer.thoughts.evaluate import evaluate

    data = problems[:6]
    answers = {ev.prompt_of(p): p["answer"] for p in data}
    right = set(list(answers)[:3])

    def engine(prompt):
        return "### " + (answers[prompt] if prompt in right else "wrong.")

    res = evaluate(engine, data, "cot")
    assert res["n"] == 6 and res["accuracy"] == pytest.approx(0.5)
    assert res["mean_generated_tokens"] > 0 and res["correct"] == [True] * 3 + [False] * 3
    with pytest.raises(InputError, match="method"):
        evaluate(engine, data, "magic")
    with pytest.raises(InputError, match="non-empty"):
        evaluate(engine, [], "cot")


def test_generated_graphs_are_as_dense_as_the_validation_set():
    """The default layout matches how the real graphs are built (a model trained on the first,
    sparser generator scored 0.65 on its own problems and 0.45 on the real ones)."""
    from explorer.tasks.prosqa.audit import graph_stats

    real, ours = graph_stats(load(VALID)), graph_stats(generate(150, seed=21))
    old = graph_stats(generate(150, seed=21, cfg=GeneratorConfig(layout="sparse", max_extra_persons=3, max_parents=3)))
    for key, tol in [("statements", 0.1), ("people", 0.1), ("parents per concept", 0.1), ("answer hops", 0.05),
                     ("nodes the person reaches", 0.1), ("wrong option: hops from its person", 0.15)]:
        assert abs(ours[key] - real[key]) <= tol * real[key], (key, ours[key], real[key])
    assert old["statements"] < 0.8 * real["statements"] and old["people"] > 3  # what the first generator gave
    with pytest.raises(InputError, match="layout"):
        generate(1, cfg=GeneratorConfig(layout="dense"))


def test_the_task_imports_no_method():
    """explorer.tasks.prosqa holds what does not depend on a method: none of its modules imports
    explorer.thoughts, explorer.recurrent, explorer.concepts, explorer.model or explorer.loading."""
    import ast

    import explorer.tasks.prosqa as task

    banned = ("explorer.thoughts", "explorer.recurrent", "explorer.concepts", "explorer.model", "explorer.loading")
    for path in sorted(Path(task.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = "explorer.tasks.prosqa".rsplit(".", node.level - 1)[0] if node.level else ""
                names = [f"{base}.{node.module}" if node.module and base else (node.module or base)]
                names += [f"{names[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad = [n for n in names if any(n == b or n.startswith(b + ".") for b in banned)]
            assert not bad, f"{path.name} imports {bad}"


def test_one_breadth_first_search(problems):
    """generate, audit, the frontier probe and the reach sets all use graph.distances."""
    import importlib

    from explorer.tasks.prosqa import audit, graph
    from explorer.thoughts import frontier

    gen = importlib.import_module("explorer.tasks.prosqa.generate")  # the package's `generate` is the function

    assert gen.distances is graph.distances and audit.distances is graph.distances
    assert frontier.hop_sets is graph.hop_sets
    for p in problems[:10]:
        n = len(p["idx_to_symbol"])
        walks, dist = graph.hop_sets(p, 3)
        assert dist == bfs(n, p["edges"], p["root"]) and walks[0] == {p["root"]}
        assert all(v in dist and dist[v] <= h for h, w in enumerate(walks) for v in w)
        for s, reached in graph.reach_sets(p).items():
            assert reached == {v: d for v, d in bfs(n, p["edges"], s).items() if d >= 1}


def test_eval_flags_and_their_older_spellings(capsys, monkeypatch):
    """`prosqa eval`: --engine, --mode and --model are separate; --method still works as before."""
    from explorer.cli import eval_engine, main as cli

    assert eval_engine() == ("thoughts", "coconut")
    assert eval_engine(engine="recurrent") == ("recurrent", None)
    assert eval_engine(mode="nocot") == ("thoughts", "no_cot")
    for method, want in [("recurrent", ("recurrent", None)), ("lcm", ("lcm", None)), ("coconut", ("thoughts", "coconut")),
                         ("soft", ("thoughts", "soft")), ("cot", ("thoughts", "cot")), ("nocot", ("thoughts", "no_cot")),
                         ("no_cot", ("thoughts", "no_cot"))]:
        assert eval_engine(method) == want
        assert eval_engine(method, want[0], want[1]) == want        # saying it twice is fine
    for bad in [dict(method="recurrent", engine="thoughts"), dict(method="cot", mode="soft"),
                dict(engine="lcm", mode="coconut"), dict(mode="dream")]:
        with pytest.raises(InputError, match="--"):
            eval_engine(**bad)
    assert cli(["prosqa", "eval", "--engine", "recurrent", "--mode", "cot"]) == 2
    assert "leave --mode out" in capsys.readouterr().err
    import explorer.thoughts.evaluate as ev

    monkeypatch.setattr(ev, "default_model", lambda mode: f"prosqa-{mode}-unshipped")   # a default not shipped (yet)
    assert cli(["prosqa", "eval", "--engine", "thoughts", "--mode", "nocot", "--limit", "1", "--json"]) == 2
    assert "prosqa-no_cot-unshipped is not shipped yet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["prosqa", "eval", "--engine", "recurrent", "--help"])
    out = capsys.readouterr().out
    assert "--iterations" in out and "--method" in out and "--model" in out
