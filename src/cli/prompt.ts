/** Reading secrets for `login`: from standard input (--password-stdin) or typed at the terminal without echo. */
import { Buffer } from "node:buffer";
import process from "node:process";
import { errorOf } from "../errdefs/mod.ts";

/** All of standard input as text with one trailing newline removed (as `docker login --password-stdin`). */
export async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

/**
 * Prints `label` to stderr and reads one line from the terminal; with `hidden` the typed characters are
 * not echoed. Throws InvalidArgument when standard input is not a terminal, Canceled on Ctrl-C or Ctrl-D.
 */
export function promptLine(label: string, hidden: boolean): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return Promise.reject(errorOf("InvalidArgument", "login: standard input is not a terminal; pass --username and --password-stdin"));
  // Echo goes off before the prompt shows, so nothing typed in answer to it can ever be echoed.
  stdin.setRawMode(true);
  process.stderr.write(label);
  return new Promise((resolve, reject) => {
    let line = "";
    const done = (err?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003" || ch === "\u0004") return done(errorOf("Canceled", "login: canceled"));
        if (ch === "\u007f" || ch === "\b") {
          if (line.length > 0 && !hidden) process.stderr.write("\b \b");
          line = [...line].slice(0, -1).join("");
        } else {
          line += ch;
          if (!hidden) process.stderr.write(ch);
        }
      }
    };
    stdin.on("data", onData);
    stdin.resume();
  });
}
