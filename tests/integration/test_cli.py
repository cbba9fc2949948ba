"""The operators' CLI over real services: every command has help, the long ones report progress on stderr."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer

from coupon import resources
from coupon.adapters import keys
from coupon.adapters.kafka_topics import delete_topics
from coupon.cli import DEMO_COUPONS
from coupon.http.access_tokens import verify_access_token
from harness.invariants import scalar
from tests.integration.conftest import KAFKA
from tests.support.cli import flask_cli, flask_process


@pytest.mark.slow
def test_create_admin_is_idempotent(base_env, engine) -> None:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    first = flask_process(base_env, "create-admin", name, "--password", "first-password-1")
    again = flask_process(base_env, "create-admin", name, "--password", "second-password-2")
    assert first.returncode == 0 and " created" in first.stdout, first.stderr
    assert again.returncode == 0 and " updated" in again.stdout, again.stderr
    assert scalar(engine, "SELECT role FROM users WHERE username = :u", u=name) == "ADMIN"
    assert "first-password-1" not in first.stdout + first.stderr


def test_mint_users_writes_valid_tokens_and_reports_progress(base_env, app, engine, tmp_path) -> None:
    out_file = tmp_path / "tokens.txt"
    minted = flask_cli(base_env, "mint-users", "2500", "--prefix", "cli-mint", "--out", str(out_file))
    assert minted.returncode == 0, minted.stderr
    progress = [line for line in minted.stderr.splitlines() if line.startswith("[mint users]")]
    assert progress[0].startswith("[mint users] 1,000/2,500 (40%)"), minted.stderr
    assert progress[1].startswith("[mint users] 2,000/2,500 (80%)")
    assert progress[-1].startswith("[mint users] 2,500/2,500 (100%)") and "done in" in progress[-1]
    lines = out_file.read_text().splitlines()
    assert len(lines) == 2500
    key = resources.of(app).jwt_key
    for line in lines[::500]:
        user_id, token = line.split()
        assert verify_access_token(token, key)["sub"] == user_id
    assert scalar(engine, "SELECT COUNT(*) FROM users WHERE username LIKE 'cli-mint-%'") == 2500


def test_seed_creates_the_demo_coupons_once(base_env, engine, rdb, tmp_path) -> None:
    first = flask_cli(base_env, "seed", "--users", "5", "--out", str(tmp_path / "demo.txt"))
    assert first.returncode == 0, first.stderr
    ids = re.findall(r"^([0-9a-f-]{36})  ", first.stdout, re.M)
    assert len(ids) == len(DEMO_COUPONS) and "(exists)" not in first.stdout
    assert f"[seed coupons] {len(DEMO_COUPONS)}/{len(DEMO_COUPONS)} (100%)" in first.stderr
    assert all(rdb.exists(keys.meta(i)) for i in ids)  # gates primed
    assert len((tmp_path / "demo.txt").read_text().splitlines()) == 5
    again = flask_cli(base_env, "seed")
    assert again.returncode == 0 and again.stdout.count("(exists)") == len(DEMO_COUPONS)
    assert re.findall(r"^([0-9a-f-]{36})  ", again.stdout, re.M) == ids
    assert scalar(engine, "SELECT COUNT(*) FROM coupons WHERE name LIKE 'Demo:%'") == len(DEMO_COUPONS)


@pytest.mark.slow
def test_rebuild_gate_restores_the_holders_from_the_db(base_env, engine, rdb, mint) -> None:
    created = flask_cli(base_env, "create-coupon", "--name", "rebuild me", "--quantity", "10")
    coupon_id = created.stdout.strip().splitlines()[-1]
    users = mint(3)
    with engine.begin() as conn:
        for rank, (user_id, _) in enumerate(users, 1):
            conn.execute(
                sa.text(
                    "INSERT INTO issued_coupons (coupon_id, user_id, `rank`, issued_at, used)"
                    " VALUES (:c, :u, :r, NOW(6), 0)"
                ),
                {"c": coupon_id, "u": user_id, "r": rank},
            )
    rdb.delete(keys.meta(coupon_id), keys.issued(coupon_id))
    # Nothing is in flight (no API): the operator may skip the wait.
    rebuilt = flask_cli(base_env, "rebuild-gate", coupon_id, "--in-flight-wait", "0")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "reserved=3" in rebuilt.stdout and "[rebuild-gate] done in" in rebuilt.stderr
    assert int(rdb.get(keys.issued(coupon_id))) == 3
    missing = flask_cli(base_env, "rebuild-gate", "00000000-0000-4000-8000-000000000000", "--in-flight-wait", "0")
    assert missing.returncode == 1 and "no coupon" in missing.stderr


def test_create_topics_with_a_chosen_partition_count(base_env) -> None:
    tag = uuid.uuid4().hex[:8]
    env = dict(base_env, KAFKA_ISSUE_TOPIC=f"test.{tag}.cli.issue", KAFKA_DLQ_TOPIC=f"test.{tag}.cli.dlq")
    try:
        made = flask_cli(env, "create-topics", "--partitions", "3")
        assert made.returncode == 0 and env["KAFKA_ISSUE_TOPIC"] in made.stdout, made.stderr
        consumer = KafkaConsumer(bootstrap_servers=KAFKA.split(","))
        try:
            assert len(consumer.partitions_for_topic(env["KAFKA_ISSUE_TOPIC"]) or ()) == 3
        finally:
            consumer.close()
        again = flask_cli(env, "create-topics", "--partitions", "3")
        assert again.returncode == 0 and "none (all exist)" in again.stdout
        assert f"{env['KAFKA_ISSUE_TOPIC']}: 3 partitions, replication factor 1, min.insync.replicas 1" in again.stdout
        # Asked for RF 3 where the topics already exist with RF 1: said out loud, exit 1, the topics untouched.
        wider = flask_cli(env, "create-topics", "--replication-factor", "3", "--min-insync-replicas", "2")
        assert wider.returncode == 1, wider.stdout + wider.stderr
        assert f"MISMATCH {env['KAFKA_ISSUE_TOPIC']} exists with replication factor 1, not 3" in wider.stderr
        assert "min.insync.replicas=1, not 2" in wider.stderr
        bad = flask_cli(env, "create-topics", "--replication-factor", "1", "--min-insync-replicas", "2")
        assert bad.returncode == 2 and "exceeds the replication factor" in bad.stderr, bad.stderr
    finally:
        delete_topics(KAFKA, [env["KAFKA_ISSUE_TOPIC"], env["KAFKA_DLQ_TOPIC"]])


def test_failures_retry_all_reports_progress(pipeline_env, engine) -> None:
    payload = (
        '{"event_id": "e", "coupon_id": "00000000-0000-4000-8000-000000000000",'
        ' "user_id": "00000000-0000-4000-8000-100000000000", "rank": 1, "requested_at": "t"}'
    )
    with engine.begin() as conn:
        for i in range(3):
            conn.exec_driver_sql(
                "INSERT INTO failed_issued_coupons (coupon_id, user_id, payload, error, retry_count, is_resolved,"
                " status, created_at) VALUES (%s, %s, %s, 'boom', 0, 0, 'PENDING', NOW(6))",
                (f"00000000-0000-4000-8000-00000000000{i}", f"00000000-0000-4000-8000-10000000000{i}", payload),
            )
    retried = flask_cli(pipeline_env, "failures", "retry", "--all")
    assert retried.returncode == 0 and "republished 3" in retried.stdout, retried.stderr
    assert "[republish] 3/3 (100%)" in retried.stderr and "done in" in retried.stderr
