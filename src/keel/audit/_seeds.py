"""Randomness with no seed: numpy, the random module, torch, and sklearn's random_state.

Checked per file (a notebook is one file): a seed set anywhere in the file counts, as a
seed set in cell 1 holds for cell 9 when the notebook runs top to bottom.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from keel.audit._kinds import finding_at
from keel.audit._model import Finding
from keel.audit._names import aliases, calls, keyword
from keel.audit._pilot import CodeUnit, by_file

__all__ = ["random_family", "unseeded_randomness"]

_SEEDERS = {
    "numpy": {"numpy.random.seed"},
    "random": {"random.seed"},
    "torch": {"torch.manual_seed", "torch.random.manual_seed", "torch.cuda.manual_seed_all"},
}
_NUMPY_NOT_DRAWS = {"seed", "default_rng", "RandomState", "Generator", "SeedSequence", "get_state"}
_STDLIB_DRAWS = {
    "random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
    "gauss", "normalvariate", "betavariate", "expovariate", "triangular", "getrandbits",
}  # fmt: skip
_TORCH_DRAWS = {
    "rand", "randn", "randint", "randperm", "rand_like", "randn_like", "normal", "bernoulli",
    "multinomial", "poisson",
}  # fmt: skip
_TORCH_LAYERS = {"Linear", "Conv1d", "Conv2d", "Conv3d", "LSTM", "GRU", "RNN", "Embedding"}
_SKLEARN_RANDOM = {
    "train_test_split", "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
    "GradientBoostingRegressor", "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor", "DecisionTreeClassifier", "DecisionTreeRegressor",
    "KMeans", "MiniBatchKMeans", "MLPClassifier", "MLPRegressor", "SGDClassifier",
    "SGDRegressor", "IsolationForest", "BaggingClassifier", "BaggingRegressor",
    "AdaBoostClassifier", "AdaBoostRegressor", "ShuffleSplit", "StratifiedShuffleSplit",
    "RandomizedSearchCV", "TSNE", "make_classification", "make_regression", "make_blobs",
}  # fmt: skip
_SKLEARN_IF_SHUFFLED = {"KFold", "StratifiedKFold", "GroupKFold"}


def random_family(call: ast.Call, name: str) -> str | None:
    """Which seedable library this call draws randomness from, if any."""
    head, _, last = name.rpartition(".")
    if head == "numpy.random" and _no_seed_given(call, last):
        return "generator"  # np.random.seed does not reach a new Generator: always report
    if head == "numpy.random" and last not in _NUMPY_NOT_DRAWS:
        return "numpy"
    if head == "random" and (last in _STDLIB_DRAWS or (last == "Random" and not call.args)):
        return "random"
    if name.startswith("torch.") and _torch_draws(call, head, last):
        return "torch"
    if name.startswith("sklearn.") and _sklearn_unseeded(call, last):
        return "sklearn"
    return None


def _no_seed_given(call: ast.Call, last: str) -> bool:
    return last in {"default_rng", "RandomState"} and not call.args and not call.keywords


def _torch_draws(call: ast.Call, head: str, last: str) -> bool:
    if head == "torch.utils.data" and last == "DataLoader":
        return _is_true(keyword(call, "shuffle"))
    return (head == "torch" and last in _TORCH_DRAWS) or (
        head == "torch.nn" and last in _TORCH_LAYERS
    )


def _sklearn_unseeded(call: ast.Call, last: str) -> bool:
    if last in _SKLEARN_IF_SHUFFLED and not _is_true(keyword(call, "shuffle")):
        return False
    if last not in _SKLEARN_RANDOM | _SKLEARN_IF_SHUFFLED:
        return False
    state = keyword(call, "random_state")
    return state is None or (isinstance(state, ast.Constant) and state.value is None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unseeded_randomness(units: tuple[CodeUnit, ...]) -> Iterator[Finding]:
    for file_units in by_file(units).values():
        yield from _file_findings(file_units)


def _file_findings(units: list[CodeUnit]) -> Iterator[Finding]:
    names = aliases(node for unit in units for node in unit.nodes)
    found = [(unit, call, name) for unit in units for call, name in calls(unit.nodes, names)]
    seeded = _seeded(name for _unit, _call, name in found)
    reported: set[str] = set()
    for unit, call, name in found:
        family = random_family(call, name)
        if family is None or family in seeded or family in reported:
            continue
        if family not in ("sklearn", "generator"):
            reported.add(family)
        yield finding_at("unseeded-randomness", unit, call, _message(family, name))


def _seeded(names: Iterator[str]) -> set[str]:
    seeded: set[str] = set()
    for name in names:
        seeded.update(family for family, seeders in _SEEDERS.items() if name in seeders)
        if "seed" in name.rpartition(".")[2].lower() and not name.startswith(
            ("numpy.", "random.", "torch.")
        ):
            seeded.update({"numpy", "random", "torch", "sklearn"})  # a seed_everything helper
    if "numpy" in seeded:
        seeded.add("sklearn")  # random_state=None draws from numpy's global generator
    return seeded


def _message(family: str, name: str) -> str:
    short = name.rpartition(".")[2]
    if family == "sklearn":
        return f"{short}(...) has no random_state and numpy's global seed is not set"
    if family == "generator":
        return f"{name}() makes a generator without a seed"
    return f"{name} draws random numbers but no {family} seed is set in this file"
