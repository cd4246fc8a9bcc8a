from __future__ import annotations

import dataclasses

import pytest

from worker.shared.settings import Settings, SettingsError, describe, markdown_table


def test_defaults_need_no_environment():
    s = Settings.from_env({})
    assert s.redis_url.startswith("redis://") and s.api_port == 8000 and s.api_keys == ()
    assert not s.auth_enabled and s.webhook_queue == "rife-video-webhooks"


def test_values_are_parsed_by_type():
    s = Settings.from_env(
        {
            "API_KEYS": "k1, k2,",
            "API_PORT": "9001",
            "S3_CREATE_BUCKET": "yes",
            "FETCH_TIMEOUT_S": "2.5",
            "FETCH_ALLOW": "127.0.0.0/8,minio",
            "WEBHOOK_RETRY_DELAYS_S": "1,2",
            "PUBLIC_BASE_URL": "",  # empty keeps the default
        }
    )
    assert s.api_keys == ("k1", "k2") and s.auth_enabled
    assert s.api_port == 9001 and s.s3_create_bucket is True and s.fetch_timeout_s == 2.5
    assert s.fetch_allow == ("127.0.0.0/8", "minio") and s.webhook_retry_delays_s == (1, 2)
    assert s.public_base_url == ""


@pytest.mark.parametrize(
    "env",
    [
        {"API_PORT": "eighty"},
        {"S3_CREATE_BUCKET": "maybe"},
        {"STORAGE_BACKEND": "ftp"},
        {"JOB_TIMEOUT_S": "0"},
        {"FETCH_ALLOW": "10.0.0.0/33"},
        {"FETCH_DENY": "redis:6379"},
        {"API_TLS_CERT": "/x.pem"},
        {"RIFE_PRECISION": "int8"},
    ],
)
def test_bad_values_name_the_variable(env):
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert next(iter(env)).split("_")[0] in str(e.value)


def test_secrets_stay_out_of_repr():
    s = Settings.from_env({"API_KEYS": "topsecret", "AWS_SECRET_ACCESS_KEY": "alsosecret"})
    assert "topsecret" not in repr(s) and "alsosecret" not in repr(s)


def test_describe_lists_every_setting_once_with_a_meaning():
    rows = describe()
    assert len(rows) == len(dataclasses.fields(Settings))
    names = [name for name, _, _ in rows]
    assert len(set(names)) == len(names)
    assert all(meaning.strip() for _, _, meaning in rows)
    assert ("API_PORT", "8000", "Port `python -m api` binds.") in rows
    assert markdown_table().count("\n") == len(rows) + 1


def test_storage_retries_are_budgeted_in_seconds():
    s = Settings.from_env({})
    assert s.storage_retry_budget_s == 60.0 and s.storage_attempts == 0  # by time, no cap on tries
    s = Settings.from_env({"STORAGE_RETRY_BUDGET_S": "25.5", "STORAGE_ATTEMPTS": "3"})
    assert s.storage_retry_budget_s == 25.5 and s.storage_attempts == 3
    with pytest.raises(SettingsError, match="STORAGE_RETRY_BUDGET_S"):
        Settings.from_env({"STORAGE_RETRY_BUDGET_S": "-1"})
