/**
 * The tutorial programs as bins of the built package, the way a user gets them: compile src/
 * with tsconfig.build.json, `npm pack` what package.json ships, `npm install` the tarball
 * into an empty project, then run node_modules/.bin/warren-* against the broker.
 *
 * The programs use the tutorials' fixed names (`logs`, `rpc_queue`), so they run in a
 * virtual host of their own (useOwnVhost), where nothing else can see them.
 */
import { execFile } from "node:child_process";
import {
  accessSync,
  constants,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Program, ROOT, cleanUpPrograms, tutorialUrl, useOwnVhost } from "./programs.js";

const exec = promisify(execFile);
const WAITING = " [*] Waiting for logs. To exit press CTRL+C";

cleanUpPrograms();
useOwnVhost("built");

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};

describe.sequential("the built package", () => {
  const dir = mkdtempSync(join(tmpdir(), "warren-built-"));
  const staging = join(dir, "package");
  const app = join(dir, "app");
  let packed: { filename: string; files: { path: string }[] };
  let url: string;

  beforeAll(async () => {
    const built = process.env["WARREN_BUILT_DIST"];
    if (built !== undefined) {
      // CI's targeted runs: the dist/ that `npm run build` made from the same tree once (the
      // build's output does not depend on the Node.js line that runs it; running it does).
      cpSync(built, join(staging, "dist"), { recursive: true });
    } else {
      // The real build, into a directory of our own so that a dist/ in the tree is left alone.
      await exec(
        join(ROOT, "node_modules/.bin/tsc"),
        ["-p", "tsconfig.build.json", "--outDir", join(staging, "dist")],
        {
          cwd: ROOT,
        },
      ).catch((err: { stdout?: string; stderr?: string }) => {
        throw new Error(`the build (tsc -p tsconfig.build.json) failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`);
      });
      // ...and its second half, as `npm run build` does it: the bundled library, the bins, trimmed declarations.
      await exec(process.execPath, [join(ROOT, "scripts/build-dist.mjs"), join(staging, "dist")], { cwd: ROOT });
    }
    copyFileSync(join(ROOT, "package.json"), join(staging, "package.json"));
    // The bins' commands: committed stubs that import the built programs (so that npm finds them before prepack builds).
    cpSync(join(ROOT, "bin"), join(staging, "bin"), { recursive: true });
    const { stdout } = await exec("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], {
      cwd: staging,
    });
    packed = (JSON.parse(stdout) as (typeof packed)[])[0] as typeof packed;

    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module" }),
    );
    // warren has no runtime dependencies: installing the tarball needs no registry.
    await exec(
      "npm",
      [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--no-package-lock",
        join(dir, packed.filename),
      ],
      { cwd: app },
    );

    url = await tutorialUrl();
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs an installed bin, as `npx warren-...` would, against the test virtual host. */
  function bin(name: string, args: string[] = []): Program {
    return new Program(name, args, { ...process.env, AMQP_URL: url }, "pipe", [join(app, "node_modules/.bin", name)]);
  }

  async function ok(name: string, args: string[] = []): Promise<string[]> {
    const exit = await bin(name, args).exited;
    expect({ code: exit.code, stderr: exit.stderr }).toEqual({ code: 0, stderr: "" });
    return exit.stdout;
  }

  test("the tarball ships the compiled JS, its declarations and every bin's file, and no sources", () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["package.json", "dist/index.js", "dist/index.d.ts"]));
    for (const target of Object.values(pkg.bin)) {
      expect(files).toContain(target);
      // Each bin's stub imports a program the build made.
      const program = /import "\.\.\/(dist\/tutorial\/\w+\.js)";/.exec(readFileSync(join(ROOT, target), "utf8"))?.[1];
      expect(files, target).toContain(program);
    }
    expect(
      files.filter(
        (f) => !f.startsWith("dist/") && !f.startsWith("bin/") && f !== "package.json" && !/^(README|LICENSE)/i.test(f),
      ),
    ).toEqual([]);
  });

  test("the library is one module (and warren/otel, warren/amqplib and its callback API one each), and its declarations keep the API's docs but nothing private or internal", () => {
    const files = packed.files.map((f) => f.path);
    expect(files.filter((f) => f.endsWith(".js") && f.startsWith("dist/") && !f.startsWith("dist/tutorial/"))).toEqual([
      "dist/amqplib-callback.js",
      "dist/amqplib.js",
      "dist/index.js",
      "dist/otel.js",
    ]);
    const installed = join(app, "node_modules/warren");
    const declarations = files.filter((f) => f.endsWith(".d.ts"));
    // The codec's inner workings (reader, writer) are no part of what index.d.ts names.
    expect(declarations).not.toContain("dist/protocol/writer.d.ts");
    expect(declarations.some((f) => f.startsWith("dist/tutorial/"))).toBe(false);
    for (const file of declarations) {
      const text = readFileSync(join(installed, file), "utf8");
      expect(text, file).not.toMatch(/^\s+private (?!constructor\b)/m);
      expect(text, file).not.toContain("@internal");
    }
    // ...while what an editor shows on hover is still there.
    const channel = readFileSync(join(installed, "dist/client/channel.d.ts"), "utf8");
    expect(channel).toMatch(/\/\*\*\s+\* basic\.publish\. Resolves once[^]*?\*\/\s+publish\(/);
  });

  test("warren/amqplib and warren/amqplib/callback_api import and require, over the one copy of warren", async () => {
    const installed = join(app, "node_modules/warren/dist");
    // Over ./index.js (and the callback API over ./amqplib.js), not a bundled copy of either.
    expect(readFileSync(join(installed, "amqplib.js"), "utf8")).toMatch(/from\s*"\.\/index\.js"/);
    expect(readFileSync(join(installed, "amqplib-callback.js"), "utf8")).toMatch(/from\s*"\.\/amqplib\.js"/);
    const program = [
      'const promise = await import("warren/amqplib");',
      'const callback = require("warren/amqplib/callback_api");',
      "console.log(typeof promise.connect, typeof promise.credentials.plain, typeof callback.connect, callback.IllegalOperationError === promise.IllegalOperationError);",
    ].join(" ");
    const { stdout } = await exec(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${program} })()`], {
      cwd: app,
    });
    expect(stdout.trim()).toBe("function function function true");
  });

  test("every bin is installed, executable, and a node script", () => {
    for (const name of Object.keys(pkg.bin)) {
      const path = join(app, "node_modules/.bin", name);
      accessSync(path, constants.X_OK);
      expect(readFileSync(path, "utf8").startsWith("#!/usr/bin/env node\n"), name).toBe(true);
    }
  });

  test("the installed package imports as `warren`", async () => {
    const { stdout } = await exec(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'import { connect, NotFoundError } from "warren"; console.log(typeof connect, typeof NotFoundError);',
      ],
      { cwd: app },
    );
    expect(stdout).toBe("function function\n");
  });

  test("warren/otel loads from the installed package once @opentelemetry/api is beside it; warren itself never needs it", async () => {
    const run = (code: string) =>
      exec(process.execPath, ["--input-type=module", "-e", code], { cwd: app }).then(
        (r) => r.stdout,
        (e: { stderr?: string }) => `failed: ${e.stderr ?? ""}`,
      );
    expect(
      await run('import("@opentelemetry/api").then(() => console.log("present"), () => console.log("absent"));'),
    ).toBe("absent\n");
    expect(await run('import("warren/otel").then(() => console.log("loaded"), (e) => console.log(e.code));')).toBe(
      "ERR_MODULE_NOT_FOUND\n",
    );
    await exec(
      "npm",
      [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--no-package-lock",
        join(ROOT, "node_modules/@opentelemetry/api"),
      ],
      { cwd: app },
    );
    expect(
      await run(
        'import { instrumentWarren } from "warren/otel"; const i = instrumentWarren(); i.disable(); console.log(typeof instrumentWarren);',
      ),
    ).toBe("function\n");
  });

  test('a CommonJS program can require("warren") (require of ES modules: Node 20.19+, 22.12+) and connect', async () => {
    const program = join(app, "uses-warren.cjs");
    writeFileSync(
      program,
      [
        'const { connect, NotFoundError } = require("warren");',
        "connect(process.env.AMQP_URL).then(async (conn) => {",
        "  const ch = await conn.openChannel();",
        '  const { queue } = await ch.queueDeclare("", { exclusive: true });',
        '  console.log(typeof NotFoundError, queue.startsWith("amq.gen-"));',
        "  await conn.close();",
        "});",
      ].join("\n"),
    );
    const { stdout, stderr } = await exec(process.execPath, [program], {
      cwd: app,
      env: { ...process.env, AMQP_URL: url },
    });
    expect({
      stdout,
      stderr: stderr.replace(/^.*ExperimentalWarning.*\n|^\(Use `node --trace-warnings.*\n/gm, ""),
    }).toEqual({ stdout: "function true\n", stderr: "" });
  });

  test("the installed declarations type-check a strict program that uses the API (nothing they name was stripped)", async () => {
    const program = join(app, "uses-warren.ts");
    writeFileSync(
      program,
      [
        'import { connect, ChannelClosedError, PublishBatchError, typed, type Message, type Publication, type RecoveryOptions, type WaitOptions } from "warren";',
        "const recovery: RecoveryOptions = { maxAttempts: 3 };",
        "const wait: WaitOptions = { timeout: 5000 };",
        'const conn = await connect({ url: ["amqp://localhost"], recovery });',
        'conn.on("reconnecting", (info) => console.log(info.attempt));',
        "const ch = await conn.openChannel(wait);",
        'await ch.publish("", "q", "x", { headers: { n: typed("l", 5) } });',
        'const batch: Publication[] = [{ exchange: "", routingKey: "q", body: "y", options: { messageId: "1" } }];',
        "await ch.publishBatch(batch).catch((e: unknown) => { if (e instanceof PublishBatchError) console.log(e.failures[0]?.index); });",
        'for await (const m of ch.consume("q")) { const msg: Message = m; ch.ack(msg); }',
        'try { await ch.queueDeclare("q", { passive: true }); } catch (e) { if (e instanceof ChannelClosedError) console.log(e.replyCode); }',
        "await conn.close();",
      ].join("\n"),
    );
    const args = [
      "--noEmit",
      "--strict",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
    ];
    const typeRoots = ["--typeRoots", join(ROOT, "node_modules/@types"), "--types", "node"];
    const result = await exec(join(ROOT, "node_modules/.bin/tsc"), [...args, ...typeRoots, program], { cwd: app }).then(
      () => "",
      (err: { stdout?: string }) => err.stdout ?? "tsc failed",
    );
    expect(result).toBe("");
  });

  // The package's types do not depend on the Node.js line or the broker: scripts/test.sh checks
  // them in one pass (RabbitMQ 4.3), and sets WARREN_SKIP_PACKAGE_TYPES for the others.
  const typesOnce = process.env["WARREN_SKIP_PACKAGE_TYPES"] !== undefined;

  // TypeScript's node16 setting models a Node.js that cannot require() an ES module, so there a
  // CommonJS file cannot import warren (an ES module) at all; under nodenext it can, as Node.js
  // 20.19+ and 22.12+ do (the require test above runs it).
  test.skipIf(typesOnce)(
    "warren and warren/otel resolve, with their types, from ESM (node16, nodenext, bundler) and CommonJS (nodenext)",
    async () => {
      const body = [
        'const conn = await connect({ url: "amqp://localhost", hostOrder: "shuffle" });',
        'const m: Message | null = await (await conn.openChannel()).get("q");',
        "console.log(m?.body.length, acquiredCount, instrumentWarren);",
      ];
      const imports = [
        'import { acquiredCount, connect, type Message } from "warren";',
        'import { instrumentWarren } from "warren/otel";',
      ];
      writeFileSync(join(app, "esm.ts"), [...imports, ...body].join("\n"));
      writeFileSync(
        join(app, "cjs.cts"),
        [...imports, "async function main(): Promise<void> {", ...body, "}", "void main();"].join("\n"),
      );
      const settings = [
        ["ESM, node16", "esm.ts", "node16", "node16"],
        ["ESM, nodenext", "esm.ts", "nodenext", "nodenext"],
        ["ESM, bundler", "esm.ts", "esnext", "bundler"],
        ["CommonJS, nodenext", "cjs.cts", "nodenext", "nodenext"],
      ] as const;
      const results = await Promise.all(
        settings.map(([what, file, module, resolution]) => {
          const args = [
            "--noEmit",
            "--strict",
            "--target",
            "es2022",
            "--module",
            module,
            "--moduleResolution",
            resolution,
            "--typeRoots",
            join(ROOT, "node_modules/@types"),
            "--types",
            "node",
          ];
          return exec(join(ROOT, "node_modules/.bin/tsc"), [...args, join(app, file)], { cwd: app }).then(
            () => [what, ""],
            (err: { stdout?: string }) => [what, err.stdout ?? "tsc failed"],
          );
        }),
      );
      expect(results).toEqual(settings.map(([what]) => [what, ""]));
    },
  );

  test.skipIf(typesOnce)(
    "@arethetypeswrong/cli finds nothing wrong with the tarball (profile esm-only: warren is an ES module)",
    async () => {
      const result = await exec(
        join(ROOT, "node_modules/.bin/attw"),
        [join(dir, packed.filename), "--profile", "esm-only", "--format", "ascii", "--no-color"],
        { cwd: app },
      ).then(
        (r) => ({ ok: true, out: r.stdout }),
        (err: { stdout?: string }) => ({ ok: false, out: err.stdout ?? "attw failed" }),
      );
      expect(result.out).toContain(`${pkg.name} v${pkg.version}`);
      expect(result.ok, result.out).toBe(true);
    },
  );

  test("warren-receive-logs twice and warren-emit-log: both receivers get every log, exit 0 on Ctrl-C", async () => {
    const receivers = [bin("warren-receive-logs"), bin("warren-receive-logs")];
    for (const r of receivers) expect(await r.ready()).toBe(WAITING);

    expect(await ok("warren-emit-log")).toEqual([" [x] Sent info: Hello World!"]);
    expect(await ok("warren-emit-log", ["error:", "from", "the", "built", "bin"])).toEqual([
      " [x] Sent error: from the built bin",
    ]);
    for (const r of receivers) {
      await r.line(" [x] error: from the built bin");
      expect(r.lines).toEqual([WAITING, " [x] info: Hello World!", " [x] error: from the built bin"]);
    }
    for (const r of receivers) expect((await r.stop("SIGINT")).code).toBe(0);
  });

  test("warren-rpc-server answers warren-rpc-client", async () => {
    const server = bin("warren-rpc-server");
    expect(await server.ready()).toBe(" [x] Awaiting RPC requests");
    expect(await ok("warren-rpc-client", ["10"])).toEqual([" [x] Requesting fib(10)", " [.] Got 55"]);
    await server.line(" [.] fib(10)");
    expect((await server.stop("SIGTERM")).code).toBe(0);
  });
});
