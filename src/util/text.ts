import stripAnsi from "strip-ansi";

/**
 * Text that came from outside (image labels, model names, container logs, HTTP bodies, ledger fields a
 * user could edit) made safe for a terminal: escape sequences (ANSI/OSC) and every other control
 * character (C0, DEL, C1) are removed, so a label cannot recolour, rewrite or forge lines of our
 * output. `multiline` keeps line breaks (reports); otherwise they become spaces (one-line messages).
 * The one function every printer uses (Reporter, the CLI's error line, status/check tables).
 */
export function safeText(text: unknown, options: { multiline?: boolean } = {}): string {
  const plain = stripAnsi(String(text));
  const controls = options.multiline
    ? // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
      /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g
    : // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
      /[\u0000-\u001f\u007f-\u009f]/g;
  const withoutCr = options.multiline ? plain.replace(/\r\n?/g, "\n") : plain;
  return withoutCr.replace(controls, (c) => (c === "\n" || c === "\t" || c === "\r" ? " " : ""));
}
