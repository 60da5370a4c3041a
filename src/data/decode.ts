import { isAscii, isUtf8 } from "node:buffer";
import iconv from "iconv-lite";

/**
 * Decodes one CSV field. Real-world exports mix encodings (the airline tweets are mostly UTF-8 with
 * Windows-1252 mojibake in some tweets), so the decision is made per field, not per file or per byte:
 * a field that is valid UTF-8 is read as UTF-8; otherwise the whole field is read as Windows-1252.
 * Per-byte fallback would turn mojibake runs into random valid multi-byte sequences (e.g. `Ûª`
 * is valid UTF-8 for U+06EA), and per-file fallback would garble the fields that are proper UTF-8.
 */
export function decodeField(bytes: Uint8Array): string {
  if (isAscii(bytes) || isUtf8(bytes))
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8");
  return decodeWindows1252(bytes);
}

/**
 * Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; iconv-lite turns them into U+FFFD.
 * Like the WHATWG decoder, map them to the C1 control with the same number instead, so no byte is lost
 * and no replacement character appears. Single-byte encoding: output index i is input byte i.
 */
export function decodeWindows1252(bytes: Uint8Array): string {
  const text = iconv.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), "windows-1252");
  if (!text.includes("\uFFFD")) return text;
  let out = "";
  for (let i = 0; i < text.length; i++) {
    out += text[i] === "\uFFFD" ? String.fromCharCode(bytes[i]!) : text[i];
  }
  return out;
}
