import protobuf from "protobufjs";

/**
 * The one ONNX protobuf schema of the code base: the whole of onnx.proto (onnx/onnx, IR version 9,
 * official field numbers). It READS and REWRITES models users bring — protobufjs drops fields its
 * schema does not know, so a rewrite (src/package/graph.ts) must declare every field a real export may
 * carry (sparse initializers, functions, training info, external data, optional types) to give back
 * the same graph — and the trainer WRITES its models with it (training/onnx/builder.ts; fields it
 * leaves unset are not encoded, so the bytes are those of the subset it uses). Drift reads the served
 * graph's vocabulary with it (src/drift/vocabulary.ts).
 */
const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11;
    TYPE_PROTO = 13; FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
    SPARSE_TENSORS = 12; TYPE_PROTOS = 14;
  }
  optional string name = 1;
  optional string ref_attr_name = 21;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  optional SparseTensorProto sparse_tensor = 22;
  optional TypeProto tp = 14;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  repeated SparseTensorProto sparse_tensors = 23;
  repeated TypeProto type_protos = 15;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message TrainingInfoProto {
  optional GraphProto initialization = 1;
  optional GraphProto algorithm = 2;
  repeated StringStringEntryProto initialization_binding = 3;
  repeated StringStringEntryProto update_binding = 4;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
  repeated TrainingInfoProto training_info = 20;
  repeated FunctionProto functions = 25;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message TensorAnnotation {
  optional string tensor_name = 1;
  repeated StringStringEntryProto quant_parameter_tensor_names = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated SparseTensorProto sparse_initializer = 15;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated TensorAnnotation quantization_annotation = 14;
}

message TensorProto {
  message Segment {
    optional int64 begin = 1;
    optional int64 end = 2;
  }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional Segment segment = 3;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
}

message SparseTensorProto {
  optional TensorProto values = 1;
  optional TensorProto indices = 2;
  repeated int64 dims = 3;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  message Sequence {
    optional TypeProto elem_type = 1;
  }
  message Map {
    optional int32 key_type = 1;
    optional TypeProto value_type = 2;
  }
  message Optional {
    optional TypeProto elem_type = 1;
  }
  message SparseTensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  message Opaque {
    optional string domain = 1;
    optional string name = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
    Sequence sequence_type = 4;
    Map map_type = 5;
    Optional optional_type = 9;
    SparseTensor sparse_tensor_type = 8;
    Opaque opaque_type = 7;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message FunctionProto {
  optional string name = 1;
  repeated string input = 4;
  repeated string output = 5;
  repeated string attribute = 6;
  repeated AttributeProto attribute_proto = 11;
  repeated NodeProto node = 7;
  optional string doc_string = 8;
  repeated OperatorSetIdProto opset_import = 9;
  optional string domain = 10;
}
`;

let root: protobuf.Root | undefined;

function onnxRoot(): protobuf.Root {
  root ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
  return root;
}

/** The ModelProto message type (encode with `ModelProto.encode(ModelProto.fromObject(obj)).finish()`). */
export function modelProtoType(): protobuf.Type {
  return onnxRoot().lookupType("onnx.ModelProto");
}

/** ONNX TensorProto.DataType numbers the trainer writes (ELEM_TYPE below names them all for reading). */
export const DataType = {
  float: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  double: 11,
} as const;
export type DataTypeName = keyof typeof DataType;

/** AttributeProto.AttributeType numbers (as in the schema's enum). */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
} as const;

/* Structural views of the decoded messages: only what src/package reads or edits. */
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number | { toNumber(): number };
  s?: Uint8Array;
  floats?: number[];
  ints?: Array<number | { toNumber(): number }>;
  strings?: Uint8Array[];
  g?: OnnxGraph;
  graphs?: OnnxGraph[];
}

export interface OnnxNode {
  input: string[];
  output: string[];
  name?: string;
  op_type: string;
  domain?: string;
  attribute: OnnxAttribute[];
}

export interface OnnxTensorType {
  elem_type?: number;
  shape?: { dim: Array<{ dim_value?: number | { toNumber(): number }; dim_param?: string }> };
}

export interface OnnxType {
  tensor_type?: OnnxTensorType;
  sequence_type?: { elem_type?: OnnxType };
  map_type?: { key_type?: number; value_type?: OnnxType };
}

export interface OnnxValueInfo {
  name: string;
  type?: OnnxType;
  doc_string?: string;
}

export interface OnnxGraph {
  node: OnnxNode[];
  name?: string;
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  value_info: OnnxValueInfo[];
  initializer: Array<{ name?: string }>;
}

export interface OnnxModel {
  ir_version?: unknown;
  opset_import: Array<{ domain?: string; version?: number | { toNumber(): number } }>;
  producer_name?: string;
  producer_version?: string;
  graph?: OnnxGraph;
  metadata_props: Array<{ key?: string; value?: string }>;
}

/** Decodes model bytes; throws protobufjs' error on bytes that are not a ModelProto. */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  return modelProtoType().decode(bytes) as unknown as OnnxModel;
}

/** Encodes a (possibly edited) decoded model back to bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const type = modelProtoType();
  return type.encode(model as unknown as protobuf.Message).finish();
}

/** Creates a message of a nested type (e.g. "NodeProto") from a plain object, for graph edits. */
export function makeMessage<T>(typeName: string, fields: object): T {
  return onnxRoot().lookupType(`onnx.${typeName}`).fromObject(fields) as unknown as T;
}

export const ELEM_TYPE: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
};

export function toNumber(v: number | { toNumber(): number } | undefined): number | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === "number" ? v : v.toNumber();
}
