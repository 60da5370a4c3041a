import { readFileSync } from "node:fs";
import { decodeModel, encodeModel } from "../src/onnx/model-proto.js";
const td = new TextDecoder();
for (const f of ["airline-3class-tfidf-lr","iris-logreg-zipmap","wine-gbm"]) {
  const bytes = readFileSync(`/work/shared/fixtures/byo/${f}.onnx`);
  const m = decodeModel(bytes);
  const re = encodeModel(m);
  console.log(f, bytes.length, re.length, Buffer.compare(Buffer.from(re), bytes));
  console.log(" opsets", m.opset_import.map(o=>`${o.domain}:${o.version}`).join(" "), "ir", String(m.ir_version));
  for (const n of m.graph!.node) console.log("  ", n.op_type, n.domain, n.input.join(","), "->", n.output.join(","), n.attribute.map(a => a.name + (a.type===3 ? "=" + td.decode(a.s) : a.type===8 ? `=[${a.strings.slice(0,4).map(s=>td.decode(s))}]` : a.type===7 && a.name.startsWith("class") ? `=${a.ints.map(String)}` : a.type===2 ? "="+String(a.i): "")).join(" "));
  console.log(" in", JSON.stringify(m.graph!.input), "\n out", JSON.stringify(m.graph!.output));
}
