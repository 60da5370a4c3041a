import * as ort from "onnxruntime-node";
for (const f of ["airline-3class-tfidf-lr","iris-logreg-zipmap","wine-gbm"]) {
  try { const s = await ort.InferenceSession.create(`/work/shared/fixtures/byo/${f}.onnx`); console.log(f, "ok", s.inputNames, s.outputNames, JSON.stringify(s.outputMetadata)); } catch (e) { console.log(f, "ERR", e.message.split("\n")[0]); }
}
