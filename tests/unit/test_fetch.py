from __future__ import annotations

import base64
import ipaddress

import pytest

from worker.shared.fetch import (
    AddressPolicy,
    BlockedAddressError,
    FetchError,
    FileTooLargeError,
    InvalidDataUriError,
    decode_data_uri,
    fetch_to_file,
    name_from_url,
)

OPEN = AddressPolicy()
LOOPBACK_OK = AddressPolicy.from_allowlist(["127.0.0.0/8"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.100.100.200",  # shared address space (another metadata endpoint)
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
    ],
)
def test_private_and_special_addresses_are_refused(address):
    assert not OPEN.address_allowed(ipaddress.ip_address(address))
    with pytest.raises(BlockedAddressError):
        OPEN.resolve(address, 80)


def test_public_addresses_pass():
    assert OPEN.address_allowed(ipaddress.ip_address("93.184.216.34"))
    assert OPEN.address_allowed(ipaddress.ip_address("2606:2800:220:1::1"))


def test_allowlist_by_cidr_and_by_host():
    assert LOOPBACK_OK.resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
    assert not LOOPBACK_OK.address_allowed(ipaddress.ip_address("10.0.0.1"))
    by_name = AddressPolicy.from_allowlist(["LocalHost"])
    assert by_name.resolve("localhost", 80)
    with pytest.raises(BlockedAddressError):
        OPEN.resolve("localhost", 80)


def test_unresolvable_host_is_a_fetch_error():
    with pytest.raises(FetchError):
        OPEN.resolve("no-such-host.invalid", 80)


def test_data_uri_decoding_and_limits():
    payload = b"\x00\x01video"
    uri = "data:video/mp4;base64," + base64.b64encode(payload).decode()
    assert decode_data_uri(uri, 100) == (payload, "video/mp4")
    assert decode_data_uri("data:,hello%20world", 100) == (b"hello world", "text/plain")
    with pytest.raises(FileTooLargeError):
        decode_data_uri(uri, 4)
    with pytest.raises(InvalidDataUriError):
        decode_data_uri("data:video/mp4;base64,@@@", 100)
    with pytest.raises(InvalidDataUriError):
        decode_data_uri("data:video/mp4;base64", 100)


def test_fetch_follows_redirects_and_caps_size(receiver, tmp_path):
    receiver.files["/clip.mp4"] = (200, {"content-type": "video/mp4"}, b"x" * 1000)
    receiver.files["/moved"] = (302, {"location": "/clip.mp4"}, b"")
    got = fetch_to_file(f"{receiver.url}/moved", tmp_path / "in", policy=LOOPBACK_OK, max_bytes=5000, timeout_s=5)
    assert got.size == 1000 and got.content_type == "video/mp4" and got.name == "clip"
    assert (tmp_path / "in").read_bytes() == b"x" * 1000
    with pytest.raises(FileTooLargeError):
        fetch_to_file(f"{receiver.url}/clip.mp4", tmp_path / "in2", policy=LOOPBACK_OK, max_bytes=999, timeout_s=5)


def test_fetch_refuses_loopback_unless_allowlisted(receiver, tmp_path):
    receiver.files["/clip.mp4"] = (200, {}, b"x")
    with pytest.raises(BlockedAddressError):
        fetch_to_file(f"{receiver.url}/clip.mp4", tmp_path / "in", policy=OPEN, max_bytes=10, timeout_s=5)


def test_redirect_to_a_private_address_is_refused(receiver, tmp_path):
    only_this_server = AddressPolicy.from_allowlist(["127.0.0.1/32"])
    receiver.files["/evil"] = (302, {"location": "http://169.254.169.254/latest/meta-data/"}, b"")
    with pytest.raises(BlockedAddressError):
        fetch_to_file(f"{receiver.url}/evil", tmp_path / "in", policy=only_this_server, max_bytes=10, timeout_s=5)


def test_http_errors_and_bad_schemes(receiver, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_to_file(f"{receiver.url}/missing", tmp_path / "in", policy=LOOPBACK_OK, max_bytes=10, timeout_s=5)
    with pytest.raises(FetchError, match="only http"):
        fetch_to_file("ftp://example.com/a", tmp_path / "in", policy=OPEN, max_bytes=10, timeout_s=5)


def test_name_from_url():
    assert name_from_url("https://h/x/My%20Clip.final.mp4?sig=1") == "My_Clip.final"
    assert name_from_url("https://h/") == "video"


def test_denied_ports_win_over_the_allowlist():
    # `make run`: loopback allowed for local test servers, its own Redis and S3 ports never.
    policy = AddressPolicy.from_allowlist(["127.0.0.0/8", "localhost"], deny=["127.0.0.0/8:6379", "[::1]:6379"])
    assert policy.resolve("127.0.0.1", 8080) == [ipaddress.ip_address("127.0.0.1")]
    assert policy.resolve("127.0.0.5", 6380)
    for host in ("127.0.0.1", "127.0.0.5", "localhost", "[::1]"):
        with pytest.raises(BlockedAddressError, match="own servers"):
            policy.resolve(host, 6379)


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "redis:6379", "::1:6379", "[::1]"])
def test_deny_entries_must_be_address_and_port(entry):
    from worker.shared.fetch import parse_endpoint

    with pytest.raises(ValueError):
        parse_endpoint(entry)


def test_only_presigned_urls_of_our_own_bucket_pass_a_denied_storage_port():
    from worker.shared.fetch import AddressPolicy, BlockedAddressError
    from worker.shared.settings import Settings

    settings = Settings(storage_backend="s3", s3_endpoint_url="http://127.0.0.1:8333", s3_bucket="b", s3_prefix="p/",
                        fetch_allow=("127.0.0.0/8",), fetch_deny=("127.0.0.0/8:8333",))
    policy = AddressPolicy.from_allowlist(settings.fetch_allow, settings.fetch_deny, settings.own_storage_prefixes())
    signed = "http://127.0.0.1:8333/b/p/uploads/a.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab12"
    assert policy.own_signed_url(signed)
    for url in ("http://127.0.0.1:8333/b/p/uploads/a.mp4",  # unsigned
                "http://127.0.0.1:8333/other/p/a.mp4?X-Amz-Signature=ab12",  # another bucket
                "http://127.0.0.1:8333/b/q/a.mp4?X-Amz-Signature=ab12",  # outside our prefix
                "http://127.0.0.1:8333/b/p/../../x?X-Amz-Signature=ab12",  # climbing out of it
                "http://127.0.0.1:9999/b/p/a.mp4?X-Amz-Signature=ab12"):  # another port
        assert not policy.own_signed_url(url), url
    assert policy.resolve("127.0.0.1", 8333, own_signed_url=True)
    with pytest.raises(BlockedAddressError, match="own servers"):
        policy.resolve("127.0.0.1", 8333)
    assert Settings(storage_backend="local").own_storage_prefixes() == ()
