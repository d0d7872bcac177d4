#!/usr/bin/env python3
"""keyctl as a coprocess (`keyctl verify --stream`): one JSON line per request, one
verdict line back, in order. Standard library only. Try it:
    API_KEY=sk_live_... KEYCTL_DB=keys.db python3 stream_client.py"""
import json, os, subprocess, threading

class Verifier:
    def __init__(self, keyctl="keyctl"):
        self.proc = subprocess.Popen([keyctl, "verify", "--stream"], text=True, bufsize=1,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lock = threading.Lock()  # one request and its answer at a time

    def verify(self, key, **context):  # context: ip, scope, deployment, model, endpoint, cost
        with self.lock:
            self.proc.stdin.write(json.dumps({"key": key, **context}) + "\n")
            return json.loads(self.proc.stdout.readline())

if __name__ == "__main__":
    v = Verifier(os.environ.get("KEYCTL", "keyctl"))
    verdict = v.verify(os.environ["API_KEY"], ip=os.environ.get("CLIENT_IP"), endpoint="GET /demo")
    print(verdict["status"], verdict["code"], verdict["key_id"] or "-")
