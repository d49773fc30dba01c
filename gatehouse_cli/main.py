"""``gatehouse``: the pipeline CLI.

Exit codes (for CI steps)::

    0  allowed / approved (or, without --wait, the approval was opened)
    1  denied: authorization denied, deployment denied or expired, creation refused
       (missing or failed checks, scope not held, nothing to approve with)
    2  usage or configuration error: bad arguments, no URL or token, token rejected (401),
       malformed request (400 invalid_request), not found (404)
    3  timed out waiting for a decision
    4  server or network error (5xx, 429, unreachable, not JSON)

Human messages go to stderr; stdout carries what a script captures: the token for
``token exchange``, the JSON answer for ``authorize`` and ``deploy``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

OK, DENIED, USAGE, TIMEOUT, SERVER = 0, 1, 2, 3, 4
DENIED_CODES = {"missing_check", "check_failed"}
USER_AGENT = "gatehouse-cli/1"


class CliError(Exception):
    """Stop with ``exit_code`` after printing ``message``."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def _say(message: str) -> None:
    print(f"gatehouse: {message}", file=sys.stderr)


def _env(*names: str) -> str:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return ""


# --- HTTP -----------------------------------------------------------------------------------


def _request(
    method: str,
    url: str,
    *,
    token: str = "",
    body: dict[str, Any] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, Any]]:
    """One JSON request; returns (status, parsed body). Network trouble and non-JSON answers
    raise :class:`CliError` with exit code 4."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read() if error.fp else b""
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(SERVER, f"cannot reach {url}: {reason}") from None
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        raise CliError(SERVER, f"{url} answered {status} with something that is not JSON") from None
    if not isinstance(parsed, dict):
        raise CliError(SERVER, f"{url} answered {status} with unexpected JSON")
    return status, parsed


def _error(status: int, answer: dict[str, Any]) -> CliError:
    """The exit code and message for a refusal answered by the API."""
    error = answer.get("error") or {}
    code, message = str(error.get("code", "")), str(error.get("message", ""))
    text = f"{status} {code}: {message}".strip()
    if status == 429 or status >= 500:
        return CliError(SERVER, text)
    if status in (401, 404) or (status == 400 and code not in DENIED_CODES) or status == 415:
        return CliError(USAGE, text)
    return CliError(DENIED, text)


class Api:
    def __init__(self, base: str, token: str = "") -> None:
        if not base:
            raise CliError(USAGE, "set --url or GATEHOUSE_URL (e.g. https://gatehouse.example.com)")
        base = base.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return _request(method, f"{self.base}{path}", token=self.token, body=body)

    def need_token(self) -> None:
        if not self.token:
            raise CliError(
                USAGE, "set --token or GATEHOUSE_TOKEN (from `gatehouse token exchange`)"
            )


# --- The CI's identity token -------------------------------------------------------------------


def ci_id_token(args: argparse.Namespace) -> str:
    """The job's OIDC ID token: --id-token, --id-token-file, GATEHOUSE_ID_TOKEN (GitLab's
    ``id_tokens:``), or asked from GitHub Actions (``permissions: id-token: write``)."""
    if args.id_token:
        return str(args.id_token).strip()
    if args.id_token_file:
        try:
            with open(args.id_token_file, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as error:
            raise CliError(USAGE, f"cannot read {args.id_token_file}: {error.strerror}") from None
    from_env = _env("GATEHOUSE_ID_TOKEN")
    if from_env:
        return from_env
    url, bearer = _env("ACTIONS_ID_TOKEN_REQUEST_URL"), _env("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        separator = "&" if "?" in url else "?"
        query = urllib.parse.urlencode({"audience": args.audience})
        status, answer = _request("GET", f"{url}{separator}{query}", token=bearer)
        if status != 200 or not answer.get("value"):
            raise CliError(SERVER, f"GitHub did not issue an ID token ({status})")
        return str(answer["value"])
    raise CliError(
        USAGE,
        "no CI identity token: give --id-token or --id-token-file, set GATEHOUSE_ID_TOKEN "
        "(GitLab id_tokens), or run in GitHub Actions with `permissions: id-token: write`",
    )


def cmd_token_exchange(args: argparse.Namespace) -> int:
    api = Api(args.url)
    status, answer = api.call("POST", "/token", {"id_token": ci_id_token(args)})
    if status != 201:
        raise _error(status, answer)
    token = str(answer["access_token"])
    account = (answer.get("service_account") or {}).get("name", "?")
    _say(f"token {answer.get('token_prefix', '')}… for {account}, expires {answer['expires_at']}")
    github_env = os.environ.get("GITHUB_ENV", "")
    if args.github_env:
        if not github_env:
            raise CliError(USAGE, "--github-env needs GITHUB_ENV (GitHub Actions only)")
        print(f"::add-mask::{token}")
        with open(github_env, "a", encoding="utf-8") as handle:
            handle.write(f"GATEHOUSE_TOKEN={token}\n")
        _say("exported GATEHOUSE_TOKEN to later steps")
    else:
        print(token)
    return OK


# --- Pipeline context ---------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> dict[str, str]:
    """Commit, run, stage and repository: from the flags, else from GitHub/GitLab variables."""
    values = {
        "commit_sha": args.commit or _env("GITHUB_SHA", "CI_COMMIT_SHA"),
        "run_id": args.run_id or _env("GITHUB_RUN_ID", "CI_PIPELINE_ID"),
        "stage": args.stage or _env("GITHUB_JOB", "CI_JOB_NAME"),
        "repository": args.repository or _env("GITHUB_REPOSITORY", "CI_PROJECT_PATH"),
    }
    return {k: v for k, v in values.items() if v}


def cmd_authorize(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    api.need_token()
    body = {
        "action": args.action,
        "system": args.system,
        "environment": args.environment,
        "context": _context(args),
    }
    status, answer = api.call("POST", "/authorize", body)
    if status not in (200, 403) or "decision" not in answer:
        raise _error(status, answer)
    print(json.dumps(answer, indent=2))
    for reason in answer.get("reasons", []):
        _say(f"{reason.get('code')}: {reason.get('message')}")
    allowed = answer.get("decision") == "allow"
    _say(f"{'allowed' if allowed else 'denied'} (audit event {answer.get('audit_event_id')})")
    return OK if allowed else DENIED


def _pairs(values: Sequence[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise CliError(USAGE, f"{what} must look like name=value, not {value!r}")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def cmd_deploy_request(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    api.need_token()
    context = _context(args)
    if "commit_sha" not in context:
        raise CliError(USAGE, "give --commit (or run where GITHUB_SHA / CI_COMMIT_SHA is set)")
    body: dict[str, Any] = {
        "system": args.system,
        "environment": args.environment,
        "action": args.action,
        "checks": dict(_pairs(args.check, "--check")),
        **context,
    }
    if args.ref or _env("GITHUB_REF", "CI_COMMIT_REF_NAME"):
        body["ref"] = args.ref or _env("GITHUB_REF", "CI_COMMIT_REF_NAME")
    if args.artifact_digest:
        body["artifact_digest"] = args.artifact_digest
    if args.link:
        body["links"] = [{"title": t, "url": u} for t, u in _pairs(args.link, "--link")]
    if args.description:
        body["description"] = args.description
    if args.callback_url:
        body["callback_url"] = args.callback_url
    status, answer = api.call("POST", "/deployments", body)
    if status != 201:
        raise _error(status, answer)
    deployment = answer["deployment"]
    _say(
        f"deployment #{deployment['id']} of {deployment['commit_sha'][:12]} to "
        f"{deployment['environment']} is waiting for approval"
    )
    if not args.wait:
        print(json.dumps(answer, indent=2))
        return OK
    return _wait(api, int(deployment["id"]), args.timeout, args.interval)


def _wait(api: Api, deployment_id: int, timeout: float, interval: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        status, answer = api.call("GET", f"/deployments/{deployment_id}")
        if status != 200:
            raise _error(status, answer)
        deployment = answer["deployment"]
        state = deployment["state"]
        if state in ("approved", "used"):
            names = ", ".join(
                a["name"] for a in deployment["approvers"] if a["decision"] == "approve"
            )
            _say(f"approved by {names}; valid until {deployment['expires_at']}")
            print(json.dumps(answer, indent=2))
            return OK
        if state in ("denied", "expired"):
            comment = f": {deployment['comment']}" if deployment.get("comment") else ""
            _say(f"deployment #{deployment_id} {state}{comment}")
            print(json.dumps(answer, indent=2))
            return DENIED
        if time.monotonic() + interval > deadline:
            _say(f"no decision on deployment #{deployment_id} within {timeout:g} s")
            return TIMEOUT
        time.sleep(interval)


def cmd_deploy_status(args: argparse.Namespace) -> int:
    api = Api(args.url, args.token)
    api.need_token()
    status, answer = api.call("GET", f"/deployments/{args.id}")
    if status != 200:
        raise _error(status, answer)
    print(json.dumps(answer, indent=2))
    return OK if answer["deployment"]["state"] in ("approved", "used") else DENIED


# --- Arguments ----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, token: bool = True) -> None:
    parser.add_argument(
        "--url", default=_env("GATEHOUSE_URL"), help="Gatehouse URL (env GATEHOUSE_URL)"
    )
    if token:
        parser.add_argument(
            "--token", default=_env("GATEHOUSE_TOKEN"), help="API token (env GATEHOUSE_TOKEN)"
        )


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", required=True, help="system slug, e.g. payments-service")
    parser.add_argument("--environment", required=True, help="environment slug, e.g. prod")
    parser.add_argument("--action", default="deploy", help="scope (default deploy)")
    parser.add_argument(
        "--commit", default="", help="commit SHA (default GITHUB_SHA/CI_COMMIT_SHA)"
    )
    parser.add_argument(
        "--run-id", default="", help="run id (default GITHUB_RUN_ID/CI_PIPELINE_ID)"
    )
    parser.add_argument(
        "--stage", default="", help="pipeline stage (default GITHUB_JOB/CI_JOB_NAME)"
    )
    parser.add_argument("--repository", default="", help="owner/name (default from the CI)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="gatehouse",
        description="Gatehouse for CI pipelines.",
        epilog="Exit codes: 0 allowed/approved, 1 denied, 2 usage or configuration error, "
        "3 timed out, 4 server or network error.",
    )
    commands = root.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True
    )
    exchange = token.add_parser("exchange", help="exchange the CI job's OIDC ID token")
    _common(exchange, token=False)
    exchange.add_argument("--id-token", default="", help="the ID token (JWT) itself")
    exchange.add_argument("--id-token-file", default="", help="a file holding the ID token")
    exchange.add_argument(
        "--audience", default="gatehouse", help="audience asked from GitHub (default gatehouse)"
    )
    exchange.add_argument(
        "--github-env",
        action="store_true",
        help="mask it and export GATEHOUSE_TOKEN to $GITHUB_ENV",
    )
    exchange.set_defaults(run=cmd_token_exchange)

    authorize = commands.add_parser("authorize", help="may this job do this now?")
    _common(authorize)
    _target(authorize)
    authorize.set_defaults(run=cmd_authorize)

    deploy = commands.add_parser("deploy", help="deployment approvals").add_subparsers(
        dest="deploy_command", required=True
    )
    request = deploy.add_parser("request", help="open a deployment approval for a commit")
    _common(request)
    _target(request)
    request.add_argument("--ref", default="", help="git ref (default from the CI)")
    request.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="NAME=STATUS",
        help="a check result, e.g. tests=passed (repeat); statuses: passed failed skipped pending",
    )
    request.add_argument("--artifact-digest", default="", help="e.g. sha256:<hex>")
    request.add_argument(
        "--link", action="append", default=[], metavar="TITLE=URL", help="a link for approvers"
    )
    request.add_argument("--description", default="", help="what this deploy is, for approvers")
    request.add_argument("--callback-url", default="", help="receives the signed decision")
    request.add_argument("--wait", action="store_true", help="poll until decided")
    request.add_argument("--timeout", type=float, default=3600, help="seconds to wait (3600)")
    request.add_argument("--interval", type=float, default=10, help="seconds between polls (10)")
    request.set_defaults(run=cmd_deploy_request)

    status = deploy.add_parser("status", help="show one deployment approval")
    _common(status)
    status.add_argument("id", type=int)
    status.set_defaults(run=cmd_deploy_status)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return USAGE if exit_.code not in (0, None) else OK
    try:
        return int(args.run(args))
    except CliError as error:
        _say(error.message)
        return error.exit_code
    except KeyboardInterrupt:
        return SERVER


if __name__ == "__main__":
    sys.exit(main())
