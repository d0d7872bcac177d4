// A service asking `keyctl serve` over HTTP (POST /v1/verify) with Node's built-in fetch.
//   API_KEY=sk_live_... KEYCTL_URL=http://127.0.0.1:8787 node serve_client.mjs
// KEYCTL_CALLER_TOKEN is sent as the bearer token when set (needed beyond loopback).
export async function verify(baseUrl, key, { callerToken, ...context } = {}) {
  const headers = { "content-type": "application/json" };
  if (callerToken) headers.authorization = `Bearer ${callerToken}`;
  const response = await fetch(`${baseUrl}/v1/verify`, {
    method: "POST",
    headers,
    body: JSON.stringify({ key, ...context }),
    signal: AbortSignal.timeout(5000),
  });
  // Every verdict is JSON, refusals (401/403/429) and 503 (store unavailable) included;
  // an answer without `valid` (a wrong caller token, a malformed request) is an error.
  const answer = await response.json();
  if (!("valid" in answer)) throw new Error(`keyctl serve: ${answer.message ?? response.status}`);
  return answer;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const verdict = await verify(process.env.KEYCTL_URL ?? "http://127.0.0.1:8787", process.env.API_KEY, {
    callerToken: process.env.KEYCTL_CALLER_TOKEN, ip: process.env.CLIENT_IP, endpoint: "GET /demo",
  });
  console.log(verdict.status, verdict.code, verdict.key_id ?? "-");
}
