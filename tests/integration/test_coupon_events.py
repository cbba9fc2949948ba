"""Who changed what: GET /api/coupon/{id}/events for changes over the API and from the CLI (`flask coupons ...`,
run in-process with Flask's CliRunner), and the CLI commands' one-line results and failures."""

from __future__ import annotations

import getpass
import re
from typing import Any

from coupon.adapters import keys
from harness.client import Api, iso_in
from harness.invariants import assert_gate_matches_db, scalar
from tests.support.cli import flask_cli

CLI_ACTOR = f"cli:{getpass.getuser()}"


def _events(server: Api, admin_token: str, coupon_id: str, **params: Any) -> list[dict[str, Any]]:
    return [e for page in server.pages(admin_token, f"/api/coupon/{coupon_id}/events", **params) for e in page]


def test_events_show_who_changed_what_over_the_api_and_the_cli(
    base_env, server: Api, admin_token: str, engine, rdb
) -> None:
    admin_id = scalar(engine, "SELECT id FROM users WHERE role = 'ADMIN' ORDER BY created_at DESC LIMIT 1")
    admin_name = scalar(engine, "SELECT username FROM users WHERE id = :u", u=admin_id)
    coupon = server.create_coupon(admin_token, 10, name="events")
    cid = coupon["id"]
    server.patch_coupon(admin_token, cid, status="DISABLED")

    enabled = flask_cli(base_env, "coupons", "enable", cid)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    assert enabled.stdout == f"coupon {cid} enabled: status DISABLED -> ACTIVE\n"
    changed = flask_cli(base_env, "coupons", "set", cid, "--quantity", "20", "--name", "renamed")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert changed.stdout == f"coupon {cid} updated: totalQuantity 10 -> 20, name events -> renamed\n"
    closed = flask_cli(base_env, "coupons", "close", cid)
    assert closed.returncode == 0 and closed.stdout.startswith(f"coupon {cid} closed: expiresAt "), (
        closed.stdout + closed.stderr
    )
    assert_gate_matches_db(engine, rdb, cid)

    events = _events(server, admin_token, cid)
    assert [(e["action"], e["actor"]) for e in events] == [
        ("closed", CLI_ACTOR),
        ("updated", CLI_ACTOR),
        ("enabled", CLI_ACTOR),
        ("disabled", admin_id),
        ("created", admin_id),
    ]
    assert [e["actorName"] for e in events] == [None, None, None, admin_name, admin_name]
    assert events[1]["changes"] == {
        "totalQuantity": {"from": 10, "to": 20},
        "name": {"from": "events", "to": "renamed"},
    }
    assert events[2]["changes"] == {"status": {"from": "DISABLED", "to": "ACTIVE"}}
    assert events[3]["changes"] == {"status": {"from": "ACTIVE", "to": "DISABLED"}}
    assert (
        set(events[0]["changes"]) == {"expiresAt"} and events[0]["changes"]["expiresAt"]["from"] == coupon["expiresAt"]
    )
    created = events[4]["changes"]
    assert created["totalQuantity"] == {"from": None, "to": 10} and created["name"] == {"from": None, "to": "events"}
    assert all(e["couponId"] == cid for e in events)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    # Paged two at a time: the same events, none repeated or skipped.
    pages = server.pages(admin_token, f"/api/coupon/{cid}/events", limit=2)
    assert [len(p) for p in pages] == [2, 2, 1] and [e for p in pages for e in p] == events


def test_cli_list_mirrors_the_api(base_env, server: Api, admin_token: str) -> None:
    live = server.create_coupon(admin_token, 10, name="live one")["id"]
    upcoming = server.create_coupon(admin_token, 10, name="later", issueStartsAt=iso_in(hours=1))["id"]
    server.patch_coupon(admin_token, upcoming, status="DISABLED")
    listed = flask_cli(base_env, "coupons", "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "status", "phase"] and lines[-1] == "(2 shown)"
    assert re.match(rf"{upcoming}\s+DISABLED\s+upcoming\s+0/10\s+\S+\s+later$", lines[1]), lines[1]
    assert re.match(rf"{live}\s+ACTIVE\s+live\s+0/10\s+\S+\s+live one$", lines[2]), lines[2]
    only = flask_cli(base_env, "coupons", "list", "--status", "ACTIVE", "--phase", "live")
    assert [line.split()[0] for line in only.stdout.splitlines()[1:-1]] == [live]
    first = flask_cli(base_env, "coupons", "list", "--limit", "1")
    cursor = re.search(r"--cursor (\S+)\)$", first.stdout)
    assert cursor and first.stdout.splitlines()[1].startswith(upcoming)
    rest = flask_cli(base_env, "coupons", "list", "--limit", "1", "--cursor", cursor.group(1))
    assert rest.stdout.splitlines()[1].startswith(live) and rest.stdout.splitlines()[-1] == "(1 shown)"
    bad = flask_cli(base_env, "coupons", "list", "--limit", "500")
    assert bad.returncode == 1 and bad.stderr.startswith("error E4000: Invalid fields: limit")


def test_cli_changes_fail_with_the_error_code(base_env, server: Api, admin_token: str, rdb) -> None:
    coupon = server.create_coupon(admin_token, 3)
    cid = coupon["id"]
    for _ in range(2):
        _, token = server.user_token()
        assert server.call("POST", f"/api/coupon/{cid}/issue", token).status_code == 202
    low = flask_cli(base_env, "coupons", "set", cid, "--quantity", "1")
    assert low.returncode == 1 and low.stderr.startswith("error E3010: ") and "'reserved': 2" in low.stderr
    assert rdb.hget(keys.meta(cid), "total") == "3"
    missing = flask_cli(base_env, "coupons", "disable", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1 and missing.stderr.startswith("error E3001: Coupon not found")
    bad_id = flask_cli(base_env, "coupons", "enable", "nope")
    assert bad_id.returncode == 1 and missing.stdout == "" and bad_id.stderr.startswith("error E4003: ")
    bad_date = flask_cli(base_env, "coupons", "set", cid, "--expires", "soon")
    assert bad_date.returncode == 1 and "E4000" in bad_date.stderr and "expiresAt" in bad_date.stderr
    nothing = flask_cli(base_env, "coupons", "set", cid)
    assert nothing.returncode == 2 and "at least one of" in (nothing.stdout + nothing.stderr)
    again = flask_cli(base_env, "coupons", "enable", cid)
    assert again.returncode == 0 and again.stdout == f"coupon {cid} unchanged\n"


def test_coupons_created_by_the_cli_name_the_cli(base_env, server: Api, admin_token: str, engine) -> None:
    made = flask_cli(base_env, "create-coupon", "--name", "from the cli", "--quantity", "5")
    assert made.returncode == 0, made.stdout + made.stderr
    cid = made.stdout.strip()
    [event] = _events(server, admin_token, cid)
    assert event["action"] == "created" and event["actor"] == CLI_ACTOR and event["actorName"] is None
    assert scalar(engine, "SELECT COUNT(*) FROM coupon_events WHERE coupon_id = :c", c=cid) == 1
