import { AttributeType, DataType, type DataTypeName, modelProtoType } from "../../src/onnx/model-proto.js";

/**
 * A small, general ONNX graph builder: typed inputs/outputs (tensors, sequences, maps), initializers
 * (numeric and string tensors), nodes from any domain, opset imports, metadata. Used by the trainer's
 * export and by tests that need hand-made models (tabular classifiers, ZipMap outputs, broken graphs).
 */

export type ValueType =
  | { tensor: DataTypeName; shape?: (number | string)[] }
  | { sequence: ValueType }
  | { map: { key: DataTypeName; value: ValueType } };

export interface TensorInit {
  dtype: DataTypeName;
  dims: number[];
  /** Flat row-major values; int64 accepts numbers or bigints. */
  values: ArrayLike<number> | readonly bigint[] | readonly string[] | readonly boolean[];
}

type AttrValue =
  | { type: "float"; value: number }
  | { type: "floats"; value: ArrayLike<number> }
  | { type: "int"; value: number }
  | { type: "ints"; value: ArrayLike<number> }
  | { type: "string"; value: string }
  | { type: "strings"; value: readonly string[] }
  | { type: "tensor"; value: TensorInit }
  | { type: "graph"; value: GraphBuilder };

/** Plain strings and string arrays infer STRING(S), integers and integer arrays infer INT(S); floats must be explicit. */
export type Attribute = AttrValue | string | readonly string[] | number | readonly number[];

export const attr = {
  float: (value: number): AttrValue => ({ type: "float", value }),
  floats: (value: ArrayLike<number>): AttrValue => ({ type: "floats", value }),
  int: (value: number): AttrValue => ({ type: "int", value }),
  ints: (value: ArrayLike<number>): AttrValue => ({ type: "ints", value }),
  string: (value: string): AttrValue => ({ type: "string", value }),
  strings: (value: readonly string[]): AttrValue => ({ type: "strings", value }),
  tensor: (value: TensorInit): AttrValue => ({ type: "tensor", value }),
  graph: (value: GraphBuilder): AttrValue => ({ type: "graph", value }),
};

export interface NodeOptions {
  domain?: string;
  name?: string;
}

export interface ModelOptions {
  /** Opset per domain, e.g. `{ "": 17, "ai.onnx.ml": 3, "com.microsoft": 1 }`. */
  opsets: Record<string, number>;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

const utf8 = new TextEncoder();

export class GraphBuilder {
  private readonly nodes: object[] = [];
  private readonly initializers: object[] = [];
  private readonly inputs: object[] = [];
  private readonly outputs: object[] = [];
  private counter = 0;

  constructor(readonly name: string) {}

  input(name: string, type: ValueType): this {
    this.inputs.push({ name, type: typeProto(type) });
    return this;
  }

  output(name: string, type: ValueType): this {
    this.outputs.push({ name, type: typeProto(type) });
    return this;
  }

  /** Adds a constant tensor and returns its name. */
  initializer(name: string, tensor: TensorInit): string {
    this.initializers.push(tensorProto(name, tensor));
    return name;
  }

  /** Adds a node; returns its output names (generated when a number of outputs is given). */
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[] | number,
    attributes: Record<string, Attribute> = {},
    options: NodeOptions = {},
  ): string[] {
    const id = this.counter++;
    const outs =
      typeof outputs === "number"
        ? Array.from(
            { length: outputs },
            (_, i) => `${opType.toLowerCase()}_${id}${outputs > 1 ? `_${i}` : ""}`,
          )
        : [...outputs];
    this.nodes.push({
      op_type: opType,
      domain: options.domain ?? "",
      name: options.name ?? `${opType}_${id}`,
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attributes).map(([n, v]) => attributeProto(n, v)),
    });
    return outs;
  }

  /** Shorthand for a single-output node. */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, Attribute> = {},
    options: NodeOptions = {},
  ): string {
    return this.node(opType, inputs, 1, attributes, options)[0]!;
  }

  toGraphProto(): object {
    return {
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    };
  }

  /** Serialises a ModelProto with this graph. */
  toModel(options: ModelOptions): Uint8Array {
    const type = modelProtoType();
    const model = {
      ir_version: options.irVersion ?? 8,
      producer_name: options.producerName ?? "modelship",
      producer_version: options.producerVersion ?? "",
      doc_string: options.docString ?? "",
      opset_import: Object.entries(options.opsets).map(([domain, version]) => ({ domain, version })),
      graph: this.toGraphProto(),
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
    const message = type.fromObject(model);
    return type.encode(message).finish();
  }
}

function typeProto(type: ValueType): object {
  if ("tensor" in type) {
    const tensor: Record<string, unknown> = { elem_type: DataType[type.tensor] };
    if (type.shape) {
      tensor.shape = {
        dim: type.shape.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })),
      };
    }
    return { tensor_type: tensor };
  }
  if ("sequence" in type) return { sequence_type: { elem_type: typeProto(type.sequence) } };
  return { map_type: { key_type: DataType[type.map.key], value_type: typeProto(type.map.value) } };
}

function attributeProto(name: string, raw: Attribute): object {
  const a = normalizeAttr(name, raw);
  switch (a.type) {
    case "float":
      return { name, type: AttributeType.FLOAT, f: a.value };
    case "floats":
      return { name, type: AttributeType.FLOATS, floats: Array.from(a.value) };
    case "int":
      return { name, type: AttributeType.INT, i: a.value };
    case "ints":
      return { name, type: AttributeType.INTS, ints: Array.from(a.value) };
    case "string":
      return { name, type: AttributeType.STRING, s: utf8.encode(a.value) };
    case "strings":
      return { name, type: AttributeType.STRINGS, strings: a.value.map((s) => utf8.encode(s)) };
    case "tensor":
      return { name, type: AttributeType.TENSOR, t: tensorProto("", a.value) };
    case "graph":
      return { name, type: AttributeType.GRAPH, g: a.value.toGraphProto() };
  }
}

function normalizeAttr(name: string, raw: Attribute): AttrValue {
  if (typeof raw === "string") return { type: "string", value: raw };
  if (typeof raw === "number") {
    if (!Number.isInteger(raw))
      throw new TypeError(`attribute ${name}: use attr.float() for non-integer ${raw}`);
    return { type: "int", value: raw };
  }
  if (Array.isArray(raw)) {
    if (raw.every((v) => typeof v === "string")) return { type: "strings", value: raw as string[] };
    if (raw.every((v) => Number.isInteger(v))) return { type: "ints", value: raw as number[] };
    throw new TypeError(`attribute ${name}: use attr.floats() for non-integer lists`);
  }
  return raw as AttrValue;
}

function tensorProto(name: string, t: TensorInit): object {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.values.length !== count) {
    throw new RangeError(
      `tensor ${name || "(attribute)"}: dims [${t.dims}] need ${count} values, got ${t.values.length}`,
    );
  }
  const base = { name, dims: t.dims, data_type: DataType[t.dtype] };
  const values = t.values as ArrayLike<unknown>;
  switch (t.dtype) {
    case "string":
      return { ...base, string_data: Array.from(values as ArrayLike<string>, (s) => utf8.encode(s)) };
    case "float":
      return { ...base, raw_data: bytesOf(Float32Array.from(values as ArrayLike<number>)) };
    case "double":
      return { ...base, raw_data: bytesOf(Float64Array.from(values as ArrayLike<number>)) };
    case "int64":
      return {
        ...base,
        raw_data: bytesOf(BigInt64Array.from(Array.from(values, (v) => BigInt(v as number)))),
      };
    case "int32":
      return { ...base, raw_data: bytesOf(Int32Array.from(values as ArrayLike<number>)) };
    case "uint8":
    case "bool":
      return { ...base, raw_data: Uint8Array.from(Array.from(values, (v) => Number(v))) };
    case "int8":
      return { ...base, raw_data: bytesOf(Int8Array.from(values as ArrayLike<number>)) };
  }
}

/** Little-endian bytes of a typed array (ONNX raw_data is little-endian; so is every host we run on). */
function bytesOf(a: Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
