import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCsv, loadTabularDataset, loadTextDataset } from "../src/data/dataset.js";
import { decodeField } from "../src/data/decode.js";
import { UserError } from "../src/util/errors.js";
import { dataPath } from "./support/data.js";

const dir = mkdtempSync(join(tmpdir(), "mstest-data-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function csv(content: string | Buffer): string {
  const path = join(dir, `f${n++}.csv`);
  writeFileSync(path, content);
  return path;
}

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).not.toContain("\n");
    return err as UserError;
  }
  throw new Error("expected a UserError");
}

describe("loadCsv on the real airline dataset", () => {
  const table = loadCsv(dataPath());

  it("reads every record with the published checksum", () => {
    expect(table.rowCount).toBe(14640);
    expect(table.rows).toHaveLength(14640);
    expect(table.sha256).toBe("d506e433829436f3ea9bcb5576bd0e39b7de18ddb9c1eb00a72df2bbc398810c");
    expect(table.columns).toContain("text");
    expect(table.columns).toContain("airline_sentiment");
  });

  it("keeps a quoted field with an embedded newline as one record", () => {
    const multi = table.rows.filter((r) => r.text!.includes("\n"));
    expect(multi.length).toBeGreaterThan(0);
    // Every record still has a valid label, so no record was split at the embedded newline.
    const labels = new Set(table.rows.map((r) => r.airline_sentiment));
    expect([...labels].sort()).toEqual(["negative", "neutral", "positive"]);
    // The line numbers account for the extra physical lines.
    const i = table.rows.indexOf(multi[0]!);
    expect(table.lines[i + 1]! - table.lines[i]!).toBe(multi[0]!.text!.split("\n").length);
  });

  it("decodes Windows-1252 fields without replacement characters", () => {
    const texts = table.rows.map((r) => r.text!);
    expect(texts.some((t) => t.includes("\uFFFD"))).toBe(false);
    // The classic mojibake of a curly quote: bytes 89 DB CF read as cp1252 "‰ÛÏ".
    expect(texts.some((t) => t.includes("‰ÛÏ"))).toBe(true);
  });

  it("undoes doubled quotes", () => {
    expect(table.rows.some((r) => /"entertainment"/.test(r.text!))).toBe(true);
    expect(table.rows.some((r) => r.text!.includes('""'))).toBe(false);
  });

  it("loads the text dataset with class counts", () => {
    const ds = loadTextDataset({ path: dataPath(), textColumn: "text", labelColumn: "airline_sentiment" });
    expect(ds.labels).toEqual(["negative", "neutral", "positive"]);
    expect(ds.classCounts).toEqual({ negative: 9178, neutral: 3099, positive: 2363 });
    expect(ds.rows).toEqual({ total: 14640, used: 14640, dropped: 0 });
    const binary = loadTextDataset({
      path: dataPath(),
      textColumn: "text",
      labelColumn: "airline_sentiment",
      labels: ["positive", "negative"],
    });
    expect(binary.labels).toEqual(["negative", "positive"]);
    expect(binary.rows).toEqual({ total: 14640, used: 11541, dropped: 3099 });
  });
});

describe("CSV quirks", () => {
  it("handles CR-only line endings, multi-line quoted fields and doubled quotes", () => {
    const path = csv('text,label\r"hello\nworld",a\r"say ""hi""",b\rplain,a\r');
    const t = loadCsv(path);
    expect(t.rows).toEqual([
      { text: "hello\nworld", label: "a" },
      { text: 'say "hi"', label: "b" },
      { text: "plain", label: "a" },
    ]);
    expect(t.lines).toEqual([2, 4, 5]);
  });

  it("handles CRLF, a BOM and a missing final newline", () => {
    const t = loadCsv(csv("\uFEFFtext,label\r\nx,a\r\ny,b"));
    expect(t.columns).toEqual(["text", "label"]);
    expect(t.rows).toEqual([
      { text: "x", label: "a" },
      { text: "y", label: "b" },
    ]);
  });

  it("decodes each field as UTF-8 when valid and as Windows-1252 otherwise", () => {
    const utf8 = Buffer.from("café ✈", "utf8");
    const cp1252 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x93, 0x71, 0x94, 0x20, 0x80]); // café “q” €
    const body = Buffer.concat([
      Buffer.from("text,label\n"),
      utf8,
      Buffer.from(",a\n"),
      cp1252,
      Buffer.from(",b\n"),
    ]);
    const t = loadCsv(csv(body));
    expect(t.rows[0]!.text).toBe("café ✈");
    expect(t.rows[1]!.text).toBe("café “q” €");
  });

  it("decides per field: a valid UTF-8 field next to a cp1252 one stays UTF-8", () => {
    const body = Buffer.concat([
      Buffer.from("a,b\n"),
      Buffer.from("naïve", "utf8"),
      Buffer.from(","),
      Buffer.from([0x6e, 0x61, 0xef, 0x76, 0x65]),
      Buffer.from("\n"),
    ]);
    expect(loadCsv(csv(body)).rows[0]).toEqual({ a: "naïve", b: "naïve" });
  });

  it("keeps bytes undefined in Windows-1252 as C1 controls instead of U+FFFD", () => {
    const s = decodeField(Buffer.from([0x41, 0x81, 0x8d, 0x8f, 0x90, 0x9d, 0x89]));
    expect(s).toBe("A\u0081\u008d\u008f\u0090\u009d‰");
    expect(s).not.toContain("\uFFFD");
  });
});

describe("bad input is one clear UserError", () => {
  const text = (path: string, extra: Partial<Parameters<typeof loadTextDataset>[0]> = {}) =>
    loadTextDataset({ path, textColumn: "text", labelColumn: "label", ...extra });

  it("missing file", () => {
    expect(userError(() => text(join(dir, "nope.csv"))).message).toMatch(/dataset not found: .*nope\.csv/);
  });

  it("a directory", () => {
    mkdirSync(join(dir, "adir.csv"));
    expect(userError(() => text(join(dir, "adir.csv"))).message).toMatch(/not a regular file/);
  });

  it("unreadable file", () => {
    if (process.getuid?.() === 0) return; // root reads anything; permission bits cannot make this fail
    const path = csv("text,label\nx,a\n");
    chmodSync(path, 0o000);
    expect(userError(() => text(path)).message).toMatch(/cannot read dataset/);
  });

  it("empty file and header-only file", () => {
    expect(userError(() => text(csv(""))).message).toMatch(/is empty/);
    expect(userError(() => text(csv("\r\n\n"))).message).toMatch(/is empty/);
    expect(userError(() => text(csv("text,label\n"))).message).toMatch(/no data rows/);
  });

  it("binary file", () => {
    const err = userError(() => text(csv(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x14, 0x00]))));
    expect(err.message).toMatch(/not a text CSV/);
  });

  it("malformed CSV names the line", () => {
    const err = userError(() => text(csv("text,label\nx,a\ny,b,extra\n")));
    expect(err.message).toMatch(/not valid CSV.*line 3/);
  });

  it("missing columns lists the available ones", () => {
    const err = userError(() => text(csv("body,sentiment\nx,a\ny,b\n")));
    expect(err.message).toBe(`dataset ${err.message.split(" ")[1]} has no column "text", "label"`);
    expect(err.hint).toBe('available columns: "body", "sentiment"');
  });

  it("a single class", () => {
    expect(userError(() => text(csv("text,label\nx,a\ny,a\n"))).message).toMatch(/only one class \("a"\)/);
    const subsetToOne = csv("text,label\nx,a\ny,b\n");
    expect(userError(() => text(subsetToOne, { labels: ["a"] })).message).toMatch(/at least two classes/);
  });

  it("labels in the subset that never occur", () => {
    const err = userError(() => text(csv("text,label\nx,a\ny,b\n"), { labels: ["a", "c"] }));
    expect(err.message).toMatch(/label\(s\) "c" never occur in column "label"/);
    expect(err.hint).toBe('labels present: "a", "b"');
  });

  it("rows with empty text list their lines, or are dropped when asked", () => {
    const path = csv('text,label\nx,a\n"",b\n  ,a\ny,b\n"multi\nline",a\nz,\n');
    const err = userError(() => text(path));
    expect(err.message).toMatch(/3 row\(s\) with empty text or an empty label, at line\(s\) 3, 4, 8/);
    expect(err.hint).toMatch(/onEmpty: drop/);
    const ds = text(path, { onEmpty: "drop" });
    expect(ds.examples.map((e) => e.text)).toEqual(["x", "y", "multi\nline"]);
    expect(ds.rows).toEqual({ total: 6, used: 3, dropped: 3 });
  });
});

describe("label subset and mapping", () => {
  it("maps raw labels, filters to the subset and counts dropped rows", () => {
    const path = csv("text,label\nx,pos\ny,neg\nz,meh\nw, pos \n");
    const ds = loadTextDataset({
      path,
      textColumn: "text",
      labelColumn: "label",
      labelMap: { pos: "positive", neg: "negative" },
      labels: ["positive", "negative"],
    });
    expect(ds.labels).toEqual(["negative", "positive"]);
    expect(ds.examples).toEqual([
      { text: "x", label: "positive", line: 2 },
      { text: "y", label: "negative", line: 3 },
      { text: "w", label: "positive", line: 5 },
    ]);
    expect(ds.classCounts).toEqual({ negative: 1, positive: 2 });
    expect(ds.rows).toEqual({ total: 4, used: 3, dropped: 1 });
  });
});

describe("loadTabularDataset", () => {
  it("parses float features in the given column order", () => {
    const path = csv("a,b,y\n1.5,-2,cat\n3e2, 4 ,dog\n");
    const ds = loadTabularDataset({ path, featureColumns: ["b", "a"], labelColumn: "y" });
    expect(ds.examples).toEqual([
      { features: [-2, 1.5], label: "cat", line: 2 },
      { features: [4, 300], label: "dog", line: 3 },
    ]);
    expect(ds.labels).toEqual(["cat", "dog"]);
  });

  it("names the line and column of a non-numeric or empty cell", () => {
    const bad = csv("a,b,y\n1,2,cat\n3,abc,dog\n");
    expect(
      userError(() => loadTabularDataset({ path: bad, featureColumns: ["a", "b"], labelColumn: "y" }))
        .message,
    ).toMatch(/line 3, column "b": "abc" is not a number/);
    const empty = csv("a,b,y\n1,2,cat\n,4,dog\n");
    expect(
      userError(() => loadTabularDataset({ path: empty, featureColumns: ["a", "b"], labelColumn: "y" }))
        .message,
    ).toMatch(/line 3, column "a": empty cell/);
  });

  it("requires feature columns that exist", () => {
    const path = csv("a,y\n1,cat\n2,dog\n");
    expect(
      userError(() => loadTabularDataset({ path, featureColumns: ["a", "z"], labelColumn: "y" })).message,
    ).toMatch(/no column "z"/);
    expect(
      userError(() => loadTabularDataset({ path, featureColumns: [], labelColumn: "y" })).message,
    ).toMatch(/no feature columns/);
  });
});
