/**
 * The API reference: `npm run docs` (TypeDoc over the TSDoc of the public API, the README as its
 * front page) builds with no warning (typedoc.json makes an undocumented export or a broken
 * {@link} an error), every link in its pages leads to a file and an anchor that exist, and the
 * pages work in a browser: headless Debian Chromium, driven by playwright-core, finds connect,
 * Connection, Channel and the errors in the index, and the search box finds publish.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, relative } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ROOT } from "../tutorial/programs.js";

const CHROMIUM = "/usr/bin/chromium";
const out = mkdtempSync(join(tmpdir(), "warren-docs-"));
let built: { stdout: string; stderr: string };
let server: Server;
let base: string;
let browser: Browser;

const walk = (dir: string): string[] => readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? walk(join(dir, name)) : [join(dir, name)]));

beforeAll(async () => {
  built = await promisify(execFile)(join(ROOT, "node_modules/.bin/typedoc"), ["--out", out], { cwd: ROOT, timeout: 120_000 });
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
  server = createServer((req, res) => {
    const path = normalize(join(out, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    const file = path.endsWith("/") ? join(path, "index.html") : path;
    if (relative(out, file).startsWith("..") || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(out, { recursive: true, force: true });
});

describe("the API reference (npm run docs)", () => {
  test("TypeDoc builds it with no warning: every export documented, every {@link} resolved", () => {
    expect(built.stdout + built.stderr).not.toMatch(/\[warning\]|\[error\]/);
    expect(existsSync(join(out, "index.html"))).toBe(true);
    // The README is the front page.
    expect(readFileSync(join(out, "index.html"), "utf8")).toContain("Two commands");
  });

  test("every link in its pages leads to a file, and to an anchor, that exist", () => {
    const pages = walk(out).filter((f) => f.endsWith(".html"));
    expect(pages.length).toBeGreaterThan(50);
    const ids = new Map<string, Set<string>>();
    const idsOf = (file: string) => {
      let set = ids.get(file);
      if (set === undefined) {
        set = new Set([...readFileSync(file, "utf8").matchAll(/\s(?:id|name)="([^"]+)"/g)].map((m) => m[1]!));
        ids.set(file, set);
      }
      return set;
    };
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, link] of readFileSync(page, "utf8").matchAll(/\s(?:href|src)="([^"]+)"/g)) {
        if (/^(?:[a-z]+:|\/\/)/i.test(link!)) continue; // http(s), mailto: not ours to check
        const [path, fragment] = link!.split("#") as [string, string | undefined];
        const target = path === "" ? page : normalize(join(dirname(page), decodeURIComponent(path)));
        if (!existsSync(target)) broken.push(`${relative(out, page)}: ${link}`);
        else if (fragment && target.endsWith(".html") && !idsOf(target).has(decodeURIComponent(fragment))) broken.push(`${relative(out, page)}: ${link} (no such anchor)`);
      }
    }
    expect(broken).toEqual([]);
  });

  test("in Chromium, the warren module lists connect, Connection, Channel and the errors", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/modules/warren.html`);
      const names = await page.locator(".tsd-member-summary-name, .tsd-index-link, a").allInnerTexts();
      const listed = new Set(names.map((n) => n.trim()));
      for (const name of ["connect", "Connection", "Channel", "AmqpError", "ConnectionClosedError", "ChannelClosedError", "NotFoundError", "TimeoutError", "ReturnedError"]) {
        expect(listed.has(name), name).toBe(true);
      }
      await page.goto(`${base}/classes/warren.Channel.html`);
      expect(await page.locator("h1").innerText()).toContain("Channel");
      expect(await page.content()).toContain("basic.publish");
    } finally {
      await page.close();
    }
  });

  test("in Chromium, searching for publish finds Channel.publish", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/index.html`);
      await page.locator("#tsd-search-trigger").click();
      await page.locator("#tsd-search-input").fill("publish");
      const results = page.locator("#tsd-search-results li");
      await results.first().waitFor({ timeout: 10_000 });
      const texts = (await results.allInnerTexts()).map((t) => t.replace(/\s+/g, " ").trim());
      expect(texts[0]).toBe("warren.Channel.publish");
      expect(await results.first().locator("a").getAttribute("href")).toMatch(/classes\/warren\.Channel\.html#publish$/);
      // And the link leads there.
      await results.first().locator("a").click();
      await page.waitForURL(/warren\.Channel\.html#publish$/);
      expect(await page.locator("#publish").count()).toBe(1);
    } finally {
      await page.close();
    }
  });
});
