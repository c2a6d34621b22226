import { test } from "node:test";
import assert from "node:assert/strict";
import { namesStreamingCommand } from "../../src/platform/memory_profile.ts";

test("namesStreamingCommand finds pull, push, images import and export behind global options", () => {
  const yes = [
    ["pull", "busybox"],
    ["--root", "/x", "--state", "/y", "pull", "-q", "busybox"],
    ["-n", "pull", "push", "ref"], // a namespace called "pull", then the push command
    ["--root=/x", "--debug", "push", "ref"],
    ["images", "import", "a.tar"],
    ["i", "export", "-o", "a.tar", "ref"],
    ["--sync", "none", "image", "--help", "export"],
  ];
  const no = [
    [],
    ["version"],
    ["images", "ls"],
    ["-n", "pull", "images", "ls"],
    ["--root", "pull", "run", "ref"],
    ["run", "pull"],
    ["images", "rm", "import"],
    ["containers", "ls"],
    ["--", "pull"],
  ];
  for (const args of yes) assert.equal(namesStreamingCommand(args), true, args.join(" "));
  for (const args of no) assert.equal(namesStreamingCommand(args), false, args.join(" "));
});
