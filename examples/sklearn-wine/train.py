"""Train the wine classifier and export it to ONNX for modelship.

    pip install -r requirements.txt && python train.py

Writes model.onnx (the graph modelship packages), data/eval.csv (held-out rows with the true label,
never trained on) and data/train.csv (the reference distributions for drift). Feature order in the
CSVs is the model's input order.
"""
from pathlib import Path

from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_wine
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 42

wine = load_wine(as_frame=True)
X = wine.data.rename(columns={"od280/od315_of_diluted_wines": "od280_od315_of_diluted_wines"})
y = wine.target.map(lambda i: f"cultivar_{'abc'[i]}")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=SEED)

model = Pipeline([("scale", StandardScaler()), ("gbm", GradientBoostingClassifier(random_state=SEED))])
model.fit(X_train, y_train)
print(f"test accuracy (scikit-learn): {model.score(X_test, y_test):.4f}")

onnx = convert_sklearn(
    model,
    initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
    options={id(model): {"zipmap": False}},  # optional: modelship removes a ZipMap itself
    target_opset={"": 15, "ai.onnx.ml": 1},
)
Path("model.onnx").write_bytes(onnx.SerializeToString())

Path("data").mkdir(exist_ok=True)
X_test.assign(cultivar=y_test).to_csv("data/eval.csv", index=False)
X_train.assign(cultivar=y_train).to_csv("data/train.csv", index=False)
print("wrote model.onnx, data/eval.csv, data/train.csv")
