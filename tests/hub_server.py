"""A local stand-in of the Hugging Face Hub's HTTP interface, for tests without internet.

It serves what `huggingface_hub`'s `HfApi.model_info` and `hf_hub_download` call: the revision API
(`/api/models/<repo>/revision/<revision>`, with file sizes, git blob ids and LFS SHA-256) and the `resolve` URLs
(HEAD with `X-Repo-Commit`, `ETag`/`X-Linked-Etag` and `X-Linked-Size`; GET with the bytes). Repositories hold
commits (file name -> bytes) and branches pointing at them; every request is logged. Point the client at it with
`HF_ENDPOINT=<server.url>`, set before huggingface_hub is imported (in a subprocess's environment).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def folder_files(folder) -> dict[str, bytes]:
    folder = Path(folder)
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


class HubServer:
    """`add_commit(repo, files, branch)` makes a commit (its id from its content) and moves the branch to it."""

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[float, str, str]] = []  # (time, method, path)
        self.gated: set[str] = set()
        self.truncate: set[str] = set()  # file names whose GET stops half-way
        server, hub = None, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hub._handle(self, body=True)

            def do_HEAD(self):
                hub._handle(self, body=False)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add_commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        repo = self.repos.setdefault(repo_id, {"branches": {}, "commits": {}})
        digest = hashlib.sha1(repo_id.encode())
        for name, data in sorted(files.items()):
            digest.update(name.encode() + hashlib.sha256(data).digest())
        commit = digest.hexdigest()
        repo["commits"][commit] = dict(files)
        repo["branches"][branch] = commit
        return commit

    def paths(self) -> list[str]:
        return [f"{method} {path}" for _, method, path in self.requests]

    # --- the HTTP interface -------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, *, body: bool):
        path = unquote(urlsplit(request.path).path)
        self.requests.append((time.time(), request.command, request.path))
        if path == "/api/agent-harnesses":  # the client's own look-up, cached for a day in HF_HOME
            return self._json(request, {"standardEnvVars": [], "harnesses": {}})
        if path.startswith("/api/models/"):
            repo_id, _, revision = path.removeprefix("/api/models/").partition("/revision/")
            return self._revision_info(request, repo_id, revision)
        parts = path.lstrip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(request, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), body=body)
        self._error(request, 404, None)

    def _error(self, request, status: int, code: str | None):
        request.send_response(status)
        if code:
            request.send_header("X-Error-Code", code)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def _commit(self, request, repo_id: str, revision: str):
        """(commit, files), or None after answering with the hub's error."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(request, 401, "RepoNotFound")
        if repo_id in self.gated and not request.headers.get("authorization"):
            return self._error(request, 401, "GatedRepo")
        commit = repo["branches"].get(revision, revision)
        if commit not in repo["commits"]:
            return self._error(request, 404, "RevisionNotFound")
        return commit, repo["commits"][commit]

    def _revision_info(self, request, repo_id: str, revision: str):
        found = self._commit(request, repo_id, revision)
        if found is None:
            return
        commit, files = found
        siblings = []
        for name, data in sorted(files.items()):
            sibling = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
            if name.endswith(LFS_SUFFIXES):
                sibling["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
            siblings.append(sibling)
        self._json(request, {"id": repo_id, "sha": commit, "siblings": siblings, "private": False})

    def _json(self, request, data):
        payload = json.dumps(data).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _resolve(self, request, repo_id: str, revision: str, name: str, *, body: bool):
        found = self._commit(request, repo_id, revision)
        if found is None:
            return
        commit, files = found
        if name not in files:
            return self._error(request, 404, "EntryNotFound")
        data = files[name]
        request.send_response(200)
        request.send_header("X-Repo-Commit", commit)
        if name.endswith(LFS_SUFFIXES):
            request.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            request.send_header("X-Linked-Size", str(len(data)))
        request.send_header("ETag", f'"{git_blob_id(data)}"')
        sent = data[: len(data) // 2] if body and name in self.truncate else data
        request.send_header("Content-Length", str(len(sent) if body else len(data)))
        request.end_headers()
        if body:
            request.wfile.write(sent)
