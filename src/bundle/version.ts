/** `YYYYMMDD.HHMMSS-<8 hex>` in UTC: sorts by time, unique by content, valid as a docker tag. */
export function makeVersion(modelSha256: string, at: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const date = `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}`;
  const time = `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
  return `${date}.${time}-${modelSha256.slice(0, 8)}`;
}

export function bundleDirName(name: string, version: string): string {
  return `${name}-${version}`;
}
