/**
 * Footprint: the packed tarball (what `npm install` downloads) and the installed size (the
 * package's files plus every package it depends on at run time, recursively, as npm lays them
 * out: apparent file sizes, summed). warren is packed from this checkout after `npm run build`;
 * its installed size is the unpacked size of that tarball (it has no dependencies).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, lstatSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";

export interface Footprint {
  client: string;
  package: string;
  version: string;
  packedBytes: number;
  installedBytes: number;
  dependencies: string[];
  typesIncluded: boolean;
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) total += dirBytes(p);
    else total += st.size;
  }
  return total;
}

/** Where Node would find `dep` when required from the package at `from`. */
function resolveDir(dep: string, from: string, root: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, "node_modules", dep);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === root || dir === dirname(dir)) return undefined;
    dir = dirname(dir);
  }
}

function npmPack(
  spec: string,
  cwd: string,
): { size: number; unpackedSize: number; version: string; files: { path: string }[] } {
  const out = execFileSync("npm", ["pack", spec, "--dry-run", "--json", "--ignore-scripts"], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    timeout: 120_000,
  });
  const info = (
    JSON.parse(out) as { size: number; unpackedSize: number; version: string; files: { path: string }[] }[]
  )[0]!;
  return info;
}

export function footprint(root: string, clients: Record<string, string>): Footprint[] {
  const rows: Footprint[] = [];
  const own = npmPack(".", root);
  rows.push({
    client: "warren",
    package: "warren",
    version: own.version,
    packedBytes: own.size,
    installedBytes: own.unpackedSize,
    dependencies: [],
    typesIncluded: own.files.some((f) => f.path.endsWith(".d.ts")),
  });
  for (const [client, pkg] of Object.entries(clients)) {
    const dir = join(root, "node_modules", pkg);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      version: string;
      main?: string;
      types?: string;
      typings?: string;
      dependencies?: Record<string, string>;
    };
    // Installed: the package directory (nested node_modules included) plus hoisted runtime deps.
    const seen = new Set<string>([dir]);
    const queue = [dir];
    const deps: string[] = [];
    let installed = 0;
    while (queue.length > 0) {
      const d = queue.shift()!;
      installed += dirBytes(d);
      const m = JSON.parse(readFileSync(join(d, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
      for (const dep of Object.keys(m.dependencies ?? {})) {
        const at = resolveDir(dep, d, root);
        if (at === undefined || seen.has(at)) continue;
        seen.add(at);
        // A dependency nested inside an already-counted directory is already in its size.
        if ([...seen].some((s) => s !== at && at.startsWith(s + "/node_modules/"))) continue;
        deps.push(dep);
        queue.push(at);
      }
    }
    let packed = NaN;
    try {
      packed = npmPack(`${pkg}@${manifest.version}`, root).size;
    } catch {
      // offline: leave NaN rather than guess
    }
    rows.push({
      client,
      package: pkg,
      version: manifest.version,
      packedBytes: packed,
      installedBytes: installed,
      dependencies: deps,
      // TypeScript also finds declarations beside the main entry (lib/index.js -> lib/index.d.ts).
      typesIncluded:
        manifest.types !== undefined ||
        manifest.typings !== undefined ||
        existsSync(join(dir, (manifest.main ?? "index.js").replace(/\.js$/, ".d.ts"))),
    });
  }
  return rows;
}
