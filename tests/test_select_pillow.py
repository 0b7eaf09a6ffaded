"""Per-input prompt selection (PILLOW): the matcher learns a known reward table; selectors, pools and
the spec behave as documented. Pure torch on tiny tensors: seconds."""

from __future__ import annotations

import pytest
import torch

from conftest import refuse_evaluated_split
from tailored_harness.core.errors import TailoredError
from tailored_harness.select import selectors
from tailored_harness.select.prompt_pool import Entry, Pool, build_pool, read_pool_file
from tailored_harness.select.spec import SELECTOR_NAMES, SelectSpec

CLUSTERS, POOL, DIM = 4, 8, 16


def _world(n: int, seed: int):
    """``n`` documents in :data:`CLUSTERS` clusters; the right entry of cluster c is entry 2c."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(CLUSTERS, DIM, generator=torch.Generator().manual_seed(99))
    cluster = torch.randint(0, CLUSTERS, (n,), generator=g)
    inputs = centres[cluster] + 0.3 * torch.randn(n, DIM, generator=g)
    return inputs, cluster * 2


def _entries():
    return torch.randn(POOL, DIM, generator=torch.Generator().manual_seed(7))


def _reward_table(right):
    """``reward_fn`` of a synthetic reward table: 1 when the document's right entry was picked, else 0."""
    calls = []

    def reward_fn(episodes):
        calls.append(len(episodes))
        return [float(right[doc].item() in picks) for doc, picks in episodes]

    return reward_fn, calls


def test_trained_matcher_picks_the_right_entry_for_held_out_inputs_and_uniform_does_not():
    train_x, train_right = _world(200, seed=1)
    test_x, test_right = _world(100, seed=2)
    entries = _entries()
    spec = SelectSpec(select="match", m=1, steps=80, batch=32, learning_rate=0.01, hidden=32, seed=3)
    learned = selectors.selector(spec)
    reward_fn, calls = _reward_table(train_right)
    curve = learned.fit(train_x, entries, torch.ones(200, POOL, dtype=torch.bool), reward_fn, progress=False)
    picks = learned.choose(test_x, entries, torch.ones(100, POOL, dtype=torch.bool), [str(i) for i in range(100)])
    hits = sum(p[0] == int(r) for p, r in zip(picks, test_right)) / 100
    assert hits >= 0.9, (hits, curve[-5:])
    assert curve[-1]["mean_reward"] > curve[0]["mean_reward"]
    assert sum(calls) <= 80 * 32  # episodes seen before are not scored again
    uniform = selectors.selector(SelectSpec(select="random", m=1, seed=3))
    picks = uniform.choose(test_x, entries, torch.ones(100, POOL, dtype=torch.bool), [str(i) for i in range(100)])
    assert sum(p[0] == int(r) for p, r in zip(picks, test_right)) / 100 < 0.5


def test_matcher_training_is_seeded_and_deterministic():
    train_x, right = _world(40, seed=1)
    entries, allowed = _entries(), torch.ones(40, POOL, dtype=torch.bool)
    runs = []
    for _ in range(2):
        learned = selectors.selector(SelectSpec(select="match", m=2, steps=5, batch=8, seed=4))
        curve = learned.fit(train_x, entries, allowed, _reward_table(right)[0], progress=False)
        runs.append((curve, learned.choose(train_x, entries, allowed, ["k"] * 40),
                     [t.clone() for t in learned.matcher.state_dict().values()]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][2], runs[1][2]))


@pytest.mark.parametrize("name", ["random", "knn", "match"])
def test_picks_are_distinct_and_never_forbidden(name):
    inputs, _ = _world(30, seed=5)
    entries = _entries()
    allowed = torch.ones(30, POOL, dtype=torch.bool)
    allowed[torch.arange(30), torch.arange(30) % POOL] = False  # each document's own demonstration
    chosen = selectors.selector(SelectSpec(select=name, m=3))
    if name == "match":
        chosen.build(DIM)
    picks = chosen.choose(inputs, entries, allowed, [f"doc{i}" for i in range(30)])
    for i, row in enumerate(picks):
        assert len(row) == 3 and len(set(row)) == 3 and i % POOL not in row


def test_knn_picks_the_nearest_entries_and_random_is_keyed_by_document():
    entries = torch.eye(4)
    inputs = torch.tensor([[0.1, 0.9, 0.5, 0.0]])
    allowed = torch.ones(1, 4, dtype=torch.bool)
    assert selectors.selector(SelectSpec(select="knn", m=2)).choose(inputs, entries, allowed, ["a"]) == [(1, 2)]
    uniform = selectors.selector(SelectSpec(select="random", m=2, seed=1))
    many = torch.ones(3, 4, dtype=torch.bool)
    first = uniform.choose(torch.zeros(3, 4), entries, many, ["a", "b", "a"])
    assert first[0] == first[2] and first == uniform.choose(torch.zeros(3, 4), entries, many, ["a", "b", "a"])
    assert selectors.selector(SelectSpec()).choose(inputs, entries, allowed, ["a"]) == [()]


def test_selector_registry_matches_the_spec_names():
    assert tuple(selectors.SELECTORS) == SELECTOR_NAMES


@pytest.mark.parametrize("args, bad", [
    ({"select": "best"}, "prompt_select='best'"), ({"m": 0}, "prompt_m=0"), ({"m": 4}, "prompt_m=4"),
    ({"pool": "pool.txt"}, "prompt_pool='pool.txt'"), ({"steps": 0}, "match_steps=0"),
    ({"learning_rate": 2.0}, "match_lr=2.0"), ({"demos": -1}, "prompt_demos=-1"),
])
def test_select_spec_rejects_bad_values_in_one_line(args, bad):
    with pytest.raises(TailoredError) as err:
        SelectSpec(**args)
    assert bad in str(err.value) and "\n" not in str(err.value)


def test_pool_files_and_the_pool_context(tmp_path):
    for bench in ("boolq", "piqa"):
        from tailored_harness.core.paths import prompts_dir

        content = read_pool_file(prompts_dir() / f"{bench}.pool.yaml")
        assert len(content["instructions"]) >= 8 and f"{bench}_tailored" in content["tasks"]
    pool = build_pool("t", {"separator": "\n--\n", "instructions": ["Be brief."], "file": None},
                      [(17, ("Q: a?\nA:", " yes")), (3, ("Q: b?\nA:", " no"))])
    assert pool.labels() == ["instruction:0", "demo:17", "demo:3"]
    assert pool.excluded(17) == [1] and pool.excluded(None) == [] and pool.excluded(5) == []
    assert pool.context((2, 0), "Q: c?\nA:") == "Q: b?\nA: no\n--\nBe brief.\n--\nQ: c?\nA:"
    assert pool.context((), "ctx") == "ctx"
    assert Pool("t", (Entry("instruction", "x"),)).digest() != Pool("t", (Entry("instruction", "y"),)).digest()
    bad = tmp_path / "bad.yaml"
    bad.write_text("instructions: [1, '']\n")
    with pytest.raises(TailoredError, match="instructions must be a list of non-empty strings"):
        read_pool_file(bad)
    bad.write_text("instruction: ['x']\n")
    with pytest.raises(TailoredError, match="unknown key"):
        read_pool_file(bad)
    with pytest.raises(TailoredError, match="cannot be read"):
        read_pool_file(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- end to end on local BoolQ documents (conftest's local_boolq)
@pytest.mark.slow
def test_matcher_trains_on_training_shots_only_never_on_itself_and_every_request_of_a_doc_shares_the_picks(
        tiny_model_dir, local_boolq, monkeypatch, tmp_path):
    import lm_eval

    from tailored_harness.select import per_input

    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))
    scored = []  # (training documents, contexts) of every reward call
    results = per_input.document_results
    monkeypatch.setattr(per_input, "document_results",
                        lambda lm, task, docs, contexts: scored.append((docs, contexts)) or results(lm, task, docs, contexts))
    refuse_evaluated_split(monkeypatch, "selecting prompts")
    args = (f"pretrained={tiny_model_dir},dtype=float32,shots=6,epochs=1,prompt_select=match,prompt_m=2,"
            f"prompt_demos=4,match_steps=3,match_batch=4")

    def run():
        return lm_eval.simple_evaluate(model="tailored", model_args=args, tasks=["boolq_tailored"], device="cpu",
                                       batch_size=4, task_manager=local_boolq, log_samples=True)

    out = run()
    info = out["config"]["tailored"]["prompt_select"]["boolq_tailored"]
    matcher = info["matcher"]
    assert info["selector"] == "match" and info["m"] == 2 and not matcher["reused"]
    assert len(info["pool"]) == 10 + 4 and [row["step"] for row in matcher["curve"]] == [1, 2, 3]
    assert sum(info["picked"].values()) == 2 * 4  # four validation documents, two entries each
    demo_sources = {int(label.split(":")[1]) for label in info["pool"] if label.startswith("demo:")}
    assert demo_sources <= set(matcher["documents"]) and len(matcher["documents"]) == 6
    assert scored and sum(len(docs) for docs, _ in scored) == sum(row["llm_calls"] for row in matcher["curve"])
    for docs, contexts in scored:
        for doc, context in zip(docs, contexts):
            assert "validation" not in context and doc["passage"].startswith("train passage")
            prefix = context[: context.index(doc["passage"])]
            assert prefix and doc["passage"] not in prefix  # its own demonstration never precedes it
            assert prefix.count("train passage") + prefix.count("\n\n") >= 2  # two entries were joined
    # the scored requests: the picks before the plain context, the same for both choices of a document
    from tailored_harness.select.prompt_pool import find_pool_file, read_pool_file

    instructions = read_pool_file(find_pool_file("boolq_tailored", None))["instructions"]
    for sample in out["samples"]["boolq_tailored"]:
        labels = sample["tailored"]["prompt_selection"]
        contexts = {arguments[0] for arguments in sample["arguments"]}
        assert len(labels) == 2 and len(contexts) == 1
        context = contexts.pop()
        assert context.endswith(templates_render(sample["doc"]))
        for label in labels:
            kind, index = label.split(":")
            assert kind == "demo" or instructions[int(index)] in context
    # a second run reuses the matcher: no reward is computed again, the picks are the same
    scored.clear()
    again = run()
    assert again["config"]["tailored"]["prompt_select"]["boolq_tailored"]["matcher"]["reused"] and scored == []
    assert [s["tailored"] for s in again["samples"]["boolq_tailored"]] == \
           [s["tailored"] for s in out["samples"]["boolq_tailored"]]


def templates_render(doc):
    from tailored_harness.taskio import templates

    return templates.render("boolq", doc)


@pytest.mark.slow
@pytest.mark.parametrize("selector", ["random", "knn"])
def test_random_and_knn_prefix_every_scored_document(tiny_model_dir, local_boolq, monkeypatch, tmp_path, selector):
    import lm_eval

    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))
    refuse_evaluated_split(monkeypatch, "selecting prompts")
    out = lm_eval.simple_evaluate(
        model="tailored", model_args=f"pretrained={tiny_model_dir},dtype=float32,shots=6,epochs=1,"
                                     f"prompt_select={selector},prompt_m=3", tasks=["boolq_tailored"], device="cpu",
        batch_size=4, task_manager=local_boolq, log_samples=True)
    info = out["config"]["tailored"]["prompt_select"]["boolq_tailored"]
    assert "matcher" not in info and sum(info["picked"].values()) == 3 * 4
    for sample in out["samples"]["boolq_tailored"]:
        assert len(set(sample["tailored"]["prompt_selection"])) == 3
        assert sample["arguments"][0][0] != templates_render(sample["doc"])


@pytest.mark.slow
def test_prompt_select_none_scores_every_request_as_without_the_stage(tiny_model_dir, local_boolq, monkeypatch, tmp_path):
    """``prompt_select=none`` (the default) against the same run with the selection stage cut out of the
    code: per request, bit for bit, and no sample carries a selection."""
    import lm_eval

    from tailored_harness.backends.hf import HFBackend
    from tailored_harness.select import per_input

    monkeypatch.setenv("TAILORED_HARNESS_CACHE", str(tmp_path / "cache"))

    def run(select):
        out = lm_eval.simple_evaluate(
            model="tailored", model_args=f"pretrained={tiny_model_dir},dtype=float32,shots=6,epochs=1{select}",
            tasks=["boolq_tailored"], device="cpu", batch_size=4, task_manager=local_boolq, log_samples=True)
        return [(s["arguments"], s["resps"], s.get("tailored")) for s in out["samples"]["boolq_tailored"]]

    explicit, default = run(",prompt_select=none"), run("")
    with monkeypatch.context() as cut:
        cut.setattr(HFBackend, "select_prompts", lambda self, tasks, built: {})
        cut.setattr(per_input, "apply", lambda *a: pytest.fail("apply was called"))
        without = run("")
    assert explicit == default == without and all(tailored is None for *_, tailored in explicit)
