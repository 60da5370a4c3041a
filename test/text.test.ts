import { describe, expect, it } from "vitest";
import { readModelLabels } from "../src/image/labels.js";
import { describeError, UserError } from "../src/util/errors.js";
import { Reporter } from "../src/util/progress.js";
import { safeText } from "../src/util/text.js";

describe("outside text on the terminal", () => {
  it("safeText removes escape sequences and control characters; multiline keeps line breaks", () => {
    const evil = "v1\u001b[2J\u001b]0;pwned\u0007\r\nnext\u0000\u009b31m\u007f";
    expect(safeText(evil)).toBe("v1  next");
    expect(safeText(evil, { multiline: true })).toBe("v1\nnext");
    expect(safeText("plain text — ✓ ünïcode")).toBe("plain text — ✓ ünïcode");
  });

  it("the CLI error line and the Reporter print it cleaned", () => {
    expect(describeError(new UserError("bad \u001b[31mred\u001b[0m\nline"))).toBe("bad red line");
    const chunks: string[] = [];
    const out = { write: (s: string) => chunks.push(s), isTTY: false } as unknown as NodeJS.WriteStream;
    new Reporter("human", out).info("model \u001b[5mblink\u001b[0m");
    expect(chunks.join("")).toBe("model blink\n");
  });

  it("model labels are held to the bundle's patterns, and the error shows the value cleaned", () => {
    const ok = {
      "dev.modelship.model.name": "airline",
      "dev.modelship.model.version": "20260101.000001-abcdef12",
      "dev.modelship.model.sha256": "a".repeat(64),
    };
    expect(readModelLabels(ok, "image x")).toEqual({
      name: "airline",
      version: "20260101.000001-abcdef12",
      sha256: "a".repeat(64),
    });
    expect(() =>
      readModelLabels({ ...ok, "dev.modelship.model.version": "1.0\n\u001b[31m" }, "image x"),
    ).toThrow(/^image x: label dev\.modelship\.model\.version="1\.0 " is invalid/);
    expect(() => readModelLabels({ ...ok, "dev.modelship.model.sha256": "abc" }, "image x")).toThrow(
      /sha256/,
    );
    expect(() => readModelLabels({}, "image x")).toThrow(/carries no modelship model labels/);
  });
});
