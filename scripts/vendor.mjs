// Copies the browser dependencies pinned in package-lock.json into static/vendor/ and writes
// static/vendor/MANIFEST.json (package, version, license, sha256, sha384 of each file), so
// `make run` needs no Node.js and a test can prove the vendored files are the pinned ones.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const FILES = [
  ["libsodium-wrappers-sumo", "dist/modules-sumo-esm/libsodium-wrappers.mjs", "libsodium/libsodium-wrappers.mjs"],
  ["libsodium-sumo", "dist/modules-sumo-esm/libsodium-sumo.mjs", "libsodium/libsodium-sumo.mjs"],
  ["jsqr", "dist/jsQR.js", "jsqr/jsQR.js"],
  ["qrcode-generator", "dist/qrcode.mjs", "qrcode-generator/qrcode.mjs"],
];

const manifest = {};
for (const [pkg, src, dest] of FILES) {
  const meta = JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8"));
  const target = join(root, "static/vendor", dest);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(root, "node_modules", pkg, src), target);
  const bytes = readFileSync(target);
  manifest[dest] = {
    package: pkg,
    version: meta.version,
    license: meta.license,
    source: `${pkg}/${src}`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    sha384: createHash("sha384").update(bytes).digest("base64"),
  };
}
writeFileSync(join(root, "static/vendor/MANIFEST.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendored ${FILES.length} files into static/vendor/`);
