// Unkey's own TypeScript SDK (@unkey/api, pinned in package.json) pointed at a
// running `keyctl serve` through its serverURL option: the SDK validates every
// response against its own schemas, so a shape it would not accept fails here.
// tests/cli/serve_clients.rs runs this and checks each printed line.
//
// Environment: KEYCTL_SERVE_URL (http://127.0.0.1:PORT), KEYCTL_CALLER_TOKEN (the
// root key position), KEYCTL_VALID_KEY, KEYCTL_REVOKED_KEY, KEYCTL_LIMITED_KEY (a key
// allowing one request a minute), KEYCTL_SCOPED_KEY (a key with scope docs.read).
// Secrets come through the environment, never argv.
import { Unkey } from "@unkey/api";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const serverURL = env("KEYCTL_SERVE_URL");
const unkey = new Unkey({
  serverURL,
  rootKey: env("KEYCTL_CALLER_TOKEN"),
  // Retries would hide a 5xx behind a slow success; none is expected here.
  retryConfig: { strategy: "none" },
});

const print = (line) => console.log(JSON.stringify(line));

// What a verification answered, or how the SDK refused the answer.
async function verify(name, client, request) {
  try {
    const res = await client.keys.verifyKey(request);
    print({
      case: name,
      requestId: res.meta.requestId,
      valid: res.data.valid,
      code: res.data.code,
      keyId: res.data.keyId ?? null,
      name: res.data.name ?? null,
      credits: res.data.credits ?? null,
      enabled: res.data.enabled ?? null,
      permissions: res.data.permissions ?? null,
    });
  } catch (e) {
    print({
      case: name,
      error: e?.name ?? String(e),
      status: e?.statusCode ?? null,
      title: e?.error?.title ?? null,
      detail: e?.error?.detail ?? null,
      locations: (e?.error?.errors ?? []).map((x) => x.location),
      message: e?.name === "ResponseValidationError" ? String(e.message) : null,
    });
  }
}

await verify("valid", unkey, {
  key: env("KEYCTL_VALID_KEY"),
  credits: { cost: 2 },
  tags: ["path=/v1/orders"],
});
await verify("revoked", unkey, { key: env("KEYCTL_REVOKED_KEY") });
await verify("limited_first", unkey, { key: env("KEYCTL_LIMITED_KEY") });
await verify("limited_second", unkey, { key: env("KEYCTL_LIMITED_KEY") });
await verify("permitted", unkey, {
  key: env("KEYCTL_SCOPED_KEY"),
  permissions: "docs.read",
});
await verify("not_permitted", unkey, {
  key: env("KEYCTL_SCOPED_KEY"),
  permissions: "docs.write",
});
// A request the SDK sends but keyctl refuses: an empty key, a query keyctl cannot
// check.
await verify("bad_request", unkey, { key: "" });
await verify("bad_query", unkey, {
  key: env("KEYCTL_VALID_KEY"),
  permissions: "docs.read AND docs.write",
});
const stranger = new Unkey({
  serverURL,
  rootKey: "not-the-caller-token",
  retryConfig: { strategy: "none" },
});
await verify("wrong_token", stranger, { key: env("KEYCTL_VALID_KEY") });
