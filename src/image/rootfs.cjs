// Runs inside the image build (serving/Dockerfile, stage `app`), with the base image's node, and
// assembles /rootfs: the final image is FROM scratch plus this tree, so it holds exactly what the
// server needs whatever the base (the official node:20-bookworm-slim alone is ~200 MB):
//   - /app with onnxruntime-node's binaries for other platforms and type/doc files removed
//   - node itself, and every shared library node and onnxruntime really map (read from
//     /proc/self/maps after loading the binding), under their real paths plus their soname links
//   - glibc's C.UTF-8 locale (onnxruntime's StringNormalizer constructs it), /etc/passwd with the
//     `node` user (uid 1000) and /tmp
// Plain CommonJS with no dependencies: it runs before anything is installed. Not part of the app.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

// Overridable so the script can be tried on a host (then `chroot $ROOTFS_OUT node …`).
const ROOT = process.env.ROOTFS_OUT || "/rootfs";
const APP = process.env.ROOTFS_APP || "/app";
const ORT_BIN = path.join(APP, "node_modules/onnxruntime-node/bin/napi-v6");
const KEEP = "linux/x64";
const JUNK = /\.(d\.[cm]?ts|map|md|markdown)$/i;

function fail(message) {
  console.error(`rootfs: ${message}`);
  process.exit(1);
}

// 1. Only the linux-x64 onnxruntime binaries, no type declarations, source maps or docs.
if (fs.existsSync(ORT_BIN)) {
  for (const os of fs.readdirSync(ORT_BIN))
    for (const arch of fs.readdirSync(path.join(ORT_BIN, os)))
      if (`${os}/${arch}` !== KEEP) fs.rmSync(path.join(ORT_BIN, os, arch), { recursive: true, force: true });
}
if (!fs.existsSync(path.join(ORT_BIN, KEEP, "libonnxruntime.so.1")))
  fail("linux-x64 onnxruntime binaries missing");
(function prune(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) prune(full);
    else if (JUNK.test(entry.name) && !/^licen[cs]e/i.test(entry.name)) fs.rmSync(full);
  }
})(path.join(APP, "node_modules"));

// 2. Load the native binding so the dynamic loader maps everything it needs, then copy what it mapped.
require(path.join(APP, "node_modules/onnxruntime-node"));
const mapped = new Set(
  fs
    .readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[5])
    .filter((p) => p?.startsWith("/") && !p.startsWith(`${APP}/`) && fs.existsSync(p)),
);
const node = fs.realpathSync(process.execPath);
mapped.delete(node);

function copyFile(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
  fs.chmodSync(to, fs.statSync(from).mode & 0o7777);
}

copyFile(node, path.join(ROOT, "usr/local/bin/node"));
for (const lib of mapped) {
  const real = fs.realpathSync(lib);
  copyFile(real, path.join(ROOT, real));
  // The loader asks for sonames (libstdc++.so.6), which are symlinks to the mapped file.
  const dir = path.dirname(real);
  for (const name of fs.readdirSync(dir)) {
    const link = path.join(dir, name);
    const target = path.join(ROOT, link);
    if (link === real || !fs.lstatSync(link).isSymbolicLink() || fs.existsSync(target)) continue;
    if (fs.realpathSync(link) === real) fs.symlinkSync(path.basename(real), target);
  }
}
// The ELF interpreter path baked into node, and the merged-/usr links Debian has (/lib → usr/lib).
for (const top of ["lib", "lib64", "bin", "sbin"]) {
  const p = `/${top}`;
  if (fs.existsSync(p) && fs.lstatSync(p).isSymbolicLink() && !fs.existsSync(path.join(ROOT, top)))
    fs.symlinkSync(fs.readlinkSync(p), path.join(ROOT, top));
}
const interpreter = "/lib64/ld-linux-x86-64.so.2";
if (fs.existsSync(interpreter) && !fs.existsSync(path.join(ROOT, interpreter)))
  copyFile(
    fs.realpathSync(interpreter),
    path.join(ROOT, fs.realpathSync(path.dirname(interpreter)), path.basename(interpreter)),
  );
if (!fs.existsSync(path.join(ROOT, interpreter))) fail(`${interpreter} missing from the rootfs`);

// 3. Locale, users, /tmp.
const locale = "/usr/lib/locale/C.utf8";
if (fs.existsSync(locale)) fs.cpSync(locale, path.join(ROOT, locale), { recursive: true });
fs.mkdirSync(path.join(ROOT, "etc"), { recursive: true });
fs.writeFileSync(
  path.join(ROOT, "etc/passwd"),
  "root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
);
fs.writeFileSync(path.join(ROOT, "etc/group"), "root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n");
fs.writeFileSync(path.join(ROOT, "etc/nsswitch.conf"), "hosts: files dns\n");
fs.mkdirSync(path.join(ROOT, "tmp"), { recursive: true });
fs.chmodSync(path.join(ROOT, "tmp"), 0o1777);
fs.mkdirSync(path.join(ROOT, "home/node"), { recursive: true });

// 4. The app itself.
fs.cpSync(APP, path.join(ROOT, "app"), { recursive: true, verbatimSymlinks: true });
console.log(`rootfs: node ${process.version}, ${mapped.size} shared libraries, app and locale`);
