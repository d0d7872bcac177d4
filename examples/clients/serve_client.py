#!/usr/bin/env python3
"""A service asking `keyctl serve` over HTTP (POST /v1/verify). Standard library only.
    API_KEY=sk_live_... KEYCTL_URL=http://127.0.0.1:8787 python3 serve_client.py
KEYCTL_CALLER_TOKEN is sent as the bearer token when set (needed beyond loopback)."""
import json, os, urllib.error, urllib.request

def verify(base_url, key, caller_token=None, **context):  # ip, scope, endpoint, cost ...
    headers = {"Content-Type": "application/json"}
    if caller_token:
        headers["Authorization"] = "Bearer " + caller_token
    body = json.dumps({"key": key, **context}).encode()
    request = urllib.request.Request(base_url + "/v1/verify", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as refused:  # 401/403/429/503: still a verdict
        answer = json.load(refused)
        if "valid" not in answer:  # a wrong caller token, a malformed request
            raise RuntimeError("keyctl serve: " + answer.get("message", str(refused.code)))
        return answer

if __name__ == "__main__":
    verdict = verify(os.environ.get("KEYCTL_URL", "http://127.0.0.1:8787"), os.environ["API_KEY"],
                     os.environ.get("KEYCTL_CALLER_TOKEN"), ip=os.environ.get("CLIENT_IP"),
                     endpoint="GET /demo")
    print(verdict["status"], verdict["code"], verdict["key_id"] or "-")
