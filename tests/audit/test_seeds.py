"""Randomness without a seed, per library, and the seeds that make it reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import found, notebook

UNSEEDED = {
    "numpy global": "import numpy as np\nx = np.random.rand(3)\n",
    "numpy from-import": "from numpy import random as npr\nnpr.shuffle(rows)\n",
    "numpy generator": "import numpy as np\nnp.random.seed(0)\nrng = np.random.default_rng()\n",
    "stdlib random": "import random\nrandom.shuffle(rows)\n",
    "stdlib from-import": "from random import choice\npick = choice(rows)\n",
    "torch": "import torch\nw = torch.randn(3, 3)\n",
    "torch layer": "from torch import nn\nlayer = nn.Linear(4, 2)\n",
    "torch loader": (
        "from torch.utils.data import DataLoader\nloader = DataLoader(ds, shuffle=True)\n"
    ),
    "sklearn split": (
        "from sklearn.model_selection import train_test_split\na, b = train_test_split(df)\n"
    ),
    "sklearn model": "from sklearn import ensemble\nm = ensemble.RandomForestClassifier()\n",
    "sklearn kfold shuffled": (
        "from sklearn.model_selection import KFold\ncv = KFold(5, shuffle=True)\n"
    ),
}
SEEDED = {
    "numpy seeded": "import numpy as np\nnp.random.seed(42)\nx = np.random.rand(3)\n",
    "numpy generator seeded": "import numpy as np\nrng = np.random.default_rng(42)\nrng.random()\n",
    "stdlib seeded": "import random\nrandom.seed(1)\nrandom.shuffle(rows)\n",
    "torch seeded": "import torch\ntorch.manual_seed(0)\nw = torch.randn(3, 3)\n",
    "sklearn random_state": (
        "from sklearn.model_selection import train_test_split\n"
        "a, b = train_test_split(df, random_state=7)\n"
    ),
    "sklearn via numpy seed": (
        "import numpy as np\nfrom sklearn.cluster import KMeans\nnp.random.seed(0)\nKMeans(3)\n"
    ),
    "kfold not shuffled": "from sklearn.model_selection import KFold\ncv = KFold(5)\n",
    "seed helper": "import torch, random\nseed_everything(42)\nrandom.random()\ntorch.rand(2)\n",
    "deterministic model": "from sklearn.linear_model import Ridge\nm = Ridge(alpha=1.0)\n",
    "local name random": "def random():\n    return 4\nx = random()\n",
}


@pytest.mark.parametrize("code", UNSEEDED.values(), ids=list(UNSEEDED))
def test_unseeded_randomness_is_found(tmp_path: Path, code: str) -> None:
    """Drawing random numbers with no seed set in the file is reported at the draw."""
    [hit] = found(tmp_path, {"train.py": code}, "unseeded-randomness")
    assert hit.line == code.count("\n")


@pytest.mark.parametrize("code", SEEDED.values(), ids=list(SEEDED))
def test_seeded_randomness_is_not_flagged(tmp_path: Path, code: str) -> None:
    """A seed, a seeded generator, random_state= or no randomness at all is fine."""
    assert found(tmp_path, {"train.py": code}, "unseeded-randomness") == []


def test_one_finding_per_library_per_file(tmp_path: Path) -> None:
    """Many unseeded numpy draws in one file make one finding, at the first."""
    code = "import numpy as np\na = np.random.rand(3)\nb = np.random.normal()\n"
    assert [h.line for h in found(tmp_path, {"train.py": code}, "unseeded-randomness")] == [2]


def test_the_first_draw_in_the_file_is_the_one_reported(tmp_path: Path) -> None:
    """The finding points at the first line that draws, even inside a function."""
    code = (
        "import random\n\n\ndef pick(rows):\n    return random.choice(rows)\n\n\nrandom.random()\n"
    )
    assert [h.line for h in found(tmp_path, {"train.py": code}, "unseeded-randomness")] == [5]


def test_a_seed_in_an_earlier_cell_covers_later_cells(tmp_path: Path) -> None:
    """In a notebook, a seed set in one cell holds for the cells after it."""
    nb = notebook("import numpy as np\nnp.random.seed(3)\n", "x = np.random.rand(5)\n")
    assert found(tmp_path, {"eda.ipynb": nb}, "unseeded-randomness") == []
