"""Data read from local files, versus data from sources that exist in production."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import found

LOCAL = {
    "pandas csv": 'import pandas as pd\ndf = pd.read_csv("customers.csv")\n',
    "pandas keyword": 'import pandas as pd\ndf = pd.read_parquet(path="data/x.parquet")\n',
    "from-import": 'from pandas import read_excel\ndf = read_excel("Q3 churn.xlsx")\n',
    "numpy": 'import numpy as np\nX = np.load("features.npy")\n',
    "pathlib": 'import pandas as pd\nfrom pathlib import Path\ndf = pd.read_csv(Path("a.csv"))\n',
    "open a data file": 'rows = open("labels.csv").read()\n',
}
NOT_LOCAL = {
    "object store": 'import pandas as pd\ndf = pd.read_csv("s3://bucket/customers.csv")\n',
    "http": 'import pandas as pd\ndf = pd.read_csv("https://example.org/c.csv")\n',
    "from config": 'import os, pandas as pd\ndf = pd.read_csv(os.environ["DATA_PATH"])\n',
    "variable": "import pandas as pd\ndf = pd.read_csv(path)\n",
    "open a text file": 'notes = open("README.md").read()\n',
}


@pytest.mark.parametrize("code", LOCAL.values(), ids=list(LOCAL))
def test_local_file_reads_are_found(tmp_path: Path, code: str) -> None:
    """Reading data from a file named in the code is reported at the call."""
    [hit] = found(tmp_path, {"train.py": code}, "local-data")
    assert hit.line == code.count("\n")


@pytest.mark.parametrize("code", NOT_LOCAL.values(), ids=list(NOT_LOCAL))
def test_declared_or_remote_sources_are_not_flagged(tmp_path: Path, code: str) -> None:
    """URLs, paths from config and non-data files are not reported."""
    assert found(tmp_path, {"train.py": code}, "local-data") == []
