"""A realistic pilot end to end, and the same pilot fixed: the audit tells them apart."""

from __future__ import annotations

from pathlib import Path

from keel.audit import Severity, audit

from .helpers import notebook, write_pilot

EXPLORE = "!pip install scikit-learn\n%matplotlib inline\nimport pandas as pd\nimport numpy as np\n"
TRAIN = """\
from sklearn.model_selection import train_test_split
from sklearn.ensemble import RandomForestClassifier
df = pd.read_csv("/home/alice/churn/customers.csv")
X_train, X_test, y_train, y_test = train_test_split(df.drop(columns="churned"), df.churned)
model = RandomForestClassifier(n_estimators=300)
model.fit(X_train, y_train)
"""
PREDICT = """\
import joblib
import pandas as pd
from flask import Flask, request

app = Flask(__name__)
model = joblib.load("model.pkl")
DB_URL = "postgresql://churn:Winter2024@10.0.0.5/churn"


@app.route("/predict", methods=["POST"])
def predict():
    return {"score": float(model.predict_proba(pd.DataFrame([request.json]))[0, 1])}
"""
PILOT = {
    "churn.ipynb": notebook(EXPLORE, TRAIN),
    "predict.py": PREDICT,
    "requirements.txt": "pandas==2.2.2\nnumpy==1.26.4\nscikit-learn==1.4.2\nflask\n",
}

TRAIN_FIXED = """\
import os

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

SEED = 42


def train(path: str = os.environ["CHURN_DATA"]) -> RandomForestClassifier:
    np.random.seed(SEED)
    df = pd.read_csv(path)
    X, y = df.drop(columns="churned"), df.churned
    X_train, _, y_train, _ = train_test_split(X, y, random_state=SEED)
    return RandomForestClassifier(n_estimators=300, random_state=SEED).fit(X_train, y_train)
"""
PREDICT_FIXED = """\
import os

import joblib
import pandas as pd
from flask import Flask, abort, request

app = Flask(__name__)
model = joblib.load(os.environ["MODEL_PATH"])
DB_URL = os.environ["DB_URL"]
FIELDS = {"age", "plan", "monthly_spend"}


@app.route("/predict", methods=["POST"])
def predict():
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or set(payload) != FIELDS:
        abort(400)
    return {"score": float(model.predict_proba(pd.DataFrame([payload]))[0, 1])}
"""
FIXED = {
    "churn.ipynb": notebook("import pandas as pd\n", "df = pd.read_csv(os.environ['DATA'])\n"),
    "train.py": TRAIN_FIXED,
    "predict.py": PREDICT_FIXED,
    "requirements.txt": (
        "pandas==2.2.2\nnumpy==1.26.4\nscikit-learn==1.4.2\nflask==3.0.3\njoblib==1.4.2\n"
    ),
    "tests/test_predict.py": "def test_refuses_bad_input():\n    pass\n",
}


def test_the_pilot_shows_every_kind_of_risk(tmp_path: Path) -> None:
    """The typical pilot is reported for each of its risks, at the right places."""
    report = audit(write_pilot(tmp_path, PILOT))
    assert {(f.kind, f.location) for f in report.findings} == {
        ("credential", "predict.py:7"),
        ("missing-dependency", "predict.py:1"),
        ("absolute-path", "churn.ipynb cell 3:3"),
        ("notebook-only-training", "churn.ipynb cell 3:6"),
        ("local-data", "churn.ipynb cell 3:3"),
        ("unseeded-randomness", "churn.ipynb cell 3:4"),
        ("unseeded-randomness", "churn.ipynb cell 3:5"),
        ("unpinned-dependency", "requirements.txt:4"),
        ("no-tests", "."),
        ("no-input-validation", "predict.py:11"),
    }


def test_findings_come_worst_first(tmp_path: Path) -> None:
    """The report lists high-severity risks before medium, low and info."""
    report = audit(write_pilot(tmp_path, PILOT))
    ranks = [f.severity.rank for f in report.findings]
    assert ranks == sorted(ranks, reverse=True)
    assert report.has_at_least(Severity.HIGH)


def test_the_fixed_pilot_is_clean(tmp_path: Path) -> None:
    """The same pilot with every risk fixed has no findings at all."""
    report = audit(write_pilot(tmp_path, FIXED))
    assert report.findings == ()
    assert "train.py" in report.files
