"""The peer for `npm run bench:serve`: the FastAPI + scikit-learn sentiment server of the common
tutorial, on the same data and with the same model as modelship's default trainer (TF-IDF word
uni+bigrams, sublinear tf, min_df 2, max_df 0.95, 20,000 features, LogisticRegression C=4 balanced).

    python3 app.py fit <airline_sentiment.csv> <model.pkl>    # train once (binary: negative/positive)
    PEER_MODEL=<model.pkl> python3 -m uvicorn app:app --workers N --port P

Debian packages: python3-fastapi python3-uvicorn python3-sklearn. Used only by the benchmark.
"""

import csv
import os
import pickle
import sys

from fastapi import FastAPI
from pydantic import BaseModel


def fit(data: str, out: str) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = [], []
    # a few rows are Windows-1252, not UTF-8 (data README); replacing those bytes is enough here
    with open(data, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            if row["airline_sentiment"] in ("negative", "positive"):
                texts.append(row["text"])
                labels.append(row["airline_sentiment"])
    pipe = make_pipeline(
        TfidfVectorizer(
            lowercase=True,
            token_pattern=r"[a-z0-9']+",
            ngram_range=(1, 2),
            min_df=2,
            max_df=0.95,
            max_features=20000,
            sublinear_tf=True,
        ),
        LogisticRegression(C=4, class_weight="balanced", max_iter=1000),
    )
    pipe.fit(texts, labels)
    with open(out, "wb") as f:
        pickle.dump(pipe, f)


app = FastAPI()
model = None
if os.environ.get("PEER_MODEL"):
    with open(os.environ["PEER_MODEL"], "rb") as f:
        model = pickle.load(f)


class Review(BaseModel):
    text: str


@app.post("/predict")
def predict(review: Review):
    probabilities = model.predict_proba([review.text])[0]
    best = int(probabilities.argmax())
    return {
        "text": review.text,
        "sentiment": str(model.classes_[best]),
        "confidence": round(float(probabilities[best]) * 100, 2),
    }


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "fit":
    fit(sys.argv[2], sys.argv[3])
