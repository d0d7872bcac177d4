// keyctl as a coprocess (`keyctl verify --stream`) from Node.js, no packages:
// one JSON line per request, answers come back in the same order.
//   API_KEY=sk_live_... KEYCTL_DB=keys.db node stream_client.mjs
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

export function verifier(keyctl = "keyctl") {
  const child = spawn(keyctl, ["verify", "--stream"], { stdio: ["pipe", "pipe", "inherit"] });
  const waiting = []; // resolvers, oldest first: verdicts arrive in request order
  createInterface({ input: child.stdout }).on("line", (line) => waiting.shift()(JSON.parse(line)));
  return {
    verify: (key, context = {}) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write(JSON.stringify({ key, ...context }) + "\n");
      }),
    close: () => child.stdin.end(),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const v = verifier(process.env.KEYCTL ?? "keyctl");
  const verdict = await v.verify(process.env.API_KEY, { ip: process.env.CLIENT_IP, endpoint: "GET /demo" });
  console.log(verdict.status, verdict.code, verdict.key_id ?? "-");
  v.close();
}
