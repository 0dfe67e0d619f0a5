"""The reference for the example app's numbers (docs/performance.md, "Classifier"): the usual way
of serving a model in Python, a Flask app running the same ONNX file with OpenCV's DNN module
(python3-flask, python3-opencv from Debian), with the same preprocessing and the same JSON as
examples/digits-classifier. bench/classifier.sh runs it under Flask's threaded server and under
gunicorn, and sends both the same load as the C++ app.

  MODEL=v2.onnx HELDOUT=heldout.csv python3 bench/classifier_flask.py   (Flask's server, :8081)
  MODEL=... HELDOUT=... gunicorn -w 2 -b 127.0.0.1:8082 --chdir bench classifier_flask:app
"""
import os
import queue
import threading

import cv2
import numpy as np
from flask import Flask, jsonify, request

MODEL = os.environ["MODEL"]
HELDOUT = os.environ.get("HELDOUT", "")
SIDE = 32

cv2.setNumThreads(1)  # parallelism comes from concurrent requests, as in the C++ app
# cv2.dnn.Net is not safe for concurrent forward calls: a pool of networks, one per request in
# flight (Flask's threaded server starts a thread per connection, so thread-local ones would be
# loaded again and again).
_pool = queue.LifoQueue()
_loaded = 0
_lock = threading.Lock()


class net:
    def __enter__(self):
        global _loaded
        try:
            self.n = _pool.get_nowait()
        except queue.Empty:
            with _lock:
                _loaded += 1
            self.n = cv2.dnn.readNetFromONNX(MODEL)
        return self.n

    def __exit__(self, *exc):
        _pool.put(self.n)


def to_blob(gray8x8):
    """8x8 gray (0..255, ink bright) -> [1, 1, 32, 32] in 0..1 by pixel replication."""
    f = gray8x8.astype(np.float32) / 255.0
    big = cv2.resize(f, (SIDE, SIDE), interpolation=cv2.INTER_NEAREST)
    return big.reshape(1, 1, SIDE, SIDE)


def heldout_accuracy():
    if not HELDOUT or not os.path.exists(HELDOUT):
        return None
    rows = np.loadtxt(HELDOUT, delimiter=",", dtype=np.int32)
    labels = rows[:, 0]
    gray = np.minimum(255, rows[:, 1:] * 255 // 16).astype(np.uint8).reshape(-1, 8, 8)
    blobs = np.concatenate([to_blob(g) for g in gray])
    with net() as n:
        n.setInput(blobs)
        out = n.forward()
    return float((out.argmax(axis=1) == labels).mean())


ACCURACY = heldout_accuracy()
app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.get("/v1/model")
def model():
    return jsonify({"file": os.path.basename(MODEL), "heldoutAccuracy":
                    None if ACCURACY is None else round(ACCURACY, 4)})


@app.post("/v1/classify")
def classify():
    k = request.args.get("k", 3, type=int)
    if k < 1 or k > 10:
        return jsonify({"error": "k: must be 1..10"}), 400
    body = request.get_data()
    if not body:
        return jsonify({"error": "body: a PNG or JPEG image is required"}), 400
    gray = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        return jsonify({"error": "body: not a PNG or JPEG image"}), 400
    small = cv2.resize(gray, (8, 8), interpolation=cv2.INTER_AREA)
    if small.mean() > 127:  # dark ink on light paper: invert
        small = 255 - small
    with net() as n:
        n.setInput(to_blob(small))
        logits = n.forward()[0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p)[:k]
    return jsonify({"model": {"file": os.path.basename(MODEL)},
                    "predictions": [{"label": str(i), "score": round(float(p[i]), 4)}
                                    for i in order]})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8081")), threaded=True)
