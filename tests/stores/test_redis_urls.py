"""Redis URL forms: what each one means, what is refused, what is shown."""

from __future__ import annotations

import pytest

from aiosessions import ConfigurationError
from aiosessions.stores.redis_urls import parse_redis_url, redact_url


class TestForms:
    def test_single_server_with_defaults(self) -> None:
        target = parse_redis_url("redis://cache.internal")
        assert target.topology == "standalone"
        assert target.nodes == (("cache.internal", 6379),)
        assert target.db == 0
        assert not target.tls
        assert target.username is None and target.password is None

    def test_password_and_acl_user_are_percent_decoded(self) -> None:
        target = parse_redis_url("rediss://app%2Dsvc:p%40ss%23w0rd@h:6380/2")
        assert target.username == "app-svc"
        assert target.password == "p@ss#w0rd"
        assert target.nodes == (("h", 6380),)
        assert target.db == 2
        assert target.tls

    def test_password_with_unencoded_specials(self) -> None:
        target = parse_redis_url("redis://:pa?ss/w#rd@h:1/3")
        assert target.password == "pa?ss/w#rd"
        assert target.nodes == (("h", 1),)
        assert target.db == 3

    def test_unix_socket(self) -> None:
        target = parse_redis_url("unix://:pw@/run/redis/redis.sock?db=4")
        assert target.topology == "standalone"
        assert target.path == "/run/redis/redis.sock"
        assert target.nodes == ()
        assert target.db == 4
        assert target.addresses == ["/run/redis/redis.sock"]

    def test_node_list_is_a_cluster(self) -> None:
        target = parse_redis_url("redis://u:pw@h1:7000, h2:7001,[::1]:7002")
        assert target.topology == "cluster"
        assert target.nodes == (("h1", 7000), ("h2", 7001), ("::1", 7002))
        assert target.addresses == ["h1:7000", "h2:7001", "[::1]:7002"]
        assert target.password == "pw"

    def test_explicit_cluster_with_one_seed_and_tls(self) -> None:
        target = parse_redis_url("rediss+cluster://h1:7000/0")
        assert target.topology == "cluster"
        assert target.tls
        assert target.nodes == (("h1", 7000),)

    def test_sentinel_with_service_db_and_both_credentials(self) -> None:
        target = parse_redis_url(
            "redis+sentinel://app:data-pw@s1,s2:26380/mymaster/5"
            "?sentinel_username=watch&sentinel_password=sentinel-pw"
        )
        assert target.topology == "sentinel"
        assert target.nodes == (("s1", 26379), ("s2", 26380))
        assert target.service_name == "mymaster"
        assert target.db == 5
        assert (target.username, target.password) == ("app", "data-pw")
        assert target.sentinel_username == "watch"
        assert target.sentinel_password == "sentinel-pw"
        assert set(target.secrets) == {"data-pw", "sentinel-pw"}

    def test_tls_options_in_the_query(self) -> None:
        target = parse_redis_url(
            "rediss://h/0?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/c.pem"
            "&ssl_keyfile=/k.pem&ssl_cert_reqs=optional&ssl_check_hostname=false"
        )
        assert target.ssl_ca_certs == "/etc/ca.pem"
        assert target.ssl_certfile == "/c.pem"
        assert target.ssl_keyfile == "/k.pem"
        assert target.ssl_cert_reqs == "optional"
        assert target.ssl_check_hostname is False

    def test_verification_is_on_by_default(self) -> None:
        target = parse_redis_url("rediss://h")
        assert target.ssl_cert_reqs == "required"
        assert target.ssl_check_hostname is True

    def test_passwords_stay_out_of_the_repr(self) -> None:
        target = parse_redis_url(
            "redis+sentinel://:data-pw@s1/m?sentinel_password=sentinel-pw"
        )
        assert "data-pw" not in repr(target)
        assert "sentinel-pw" not in repr(target)


class TestRefused:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("http://h", "unsupported URL"),
            ("h:6379", "unsupported URL"),
            ("redis://h:0", "bad port"),
            ("redis://h:99999", "bad port"),
            ("redis://h:port", "bad port"),
            ("redis://:6379", "host is missing"),
            ("redis://h1,,h2", "host is missing"),
            ("redis://[::1", "bad IPv6"),
            ("redis://[::1]x", "bad IPv6"),
            ("redis://h/x", "bad database number"),
            ("redis://h/0/1", "unexpected path"),
            ("redis://h?db=x", "bad database number"),
            ("redis://h1,h2/1", "only database 0"),
            ("redis+sentinel://s1", "service name is missing"),
            ("redis://h?ssl_ca_certs=/ca.pem", "need a rediss:// URL"),
            ("redis://h?sentinel_password=x", "need a redis\\+sentinel://"),
            ("redis://h?timeout=1", "unknown option 'timeout'"),
            ("rediss://h?ssl_cert_reqs=maybe", "expected required"),
            ("rediss://h?ssl_check_hostname=perhaps", "expected true or false"),
            ("redis://h/0#frag", "'#'"),
            ("redis://just-a-user@h", "user name without a password"),
            ("unix://host/tmp/x.sock", "three slashes"),
            ("unix://", "socket path is missing"),
        ],
    )
    def test_malformed_urls_name_the_problem(self, url: str, reason: str) -> None:
        with pytest.raises(ConfigurationError, match=reason) as caught:
            parse_redis_url(url)
        assert caught.value.name == "url"

    def test_every_form_is_listed_when_the_scheme_is_unknown(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            parse_redis_url("memcached://h")
        message = str(caught.value)
        for form in ("rediss://", "unix://", "h1:p1,h2:p2", "redis+sentinel://"):
            assert form in message

    def test_not_a_string(self) -> None:
        with pytest.raises(ConfigurationError, match="expected"):
            parse_redis_url(None)  # type: ignore[arg-type]

    def test_refusals_never_show_the_password(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            parse_redis_url("redis://:hunter2@h:notaport/0")
        assert "hunter2" not in str(caught.value)
        assert "***" in str(caught.value)


class TestRedact:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://u:pw@h1:1,h2:2", "redis://u:***@h1:1,h2:2"),
            ("unix://:pw@/tmp/r.sock?db=1", "unix://:***@/tmp/r.sock?db=1"),
            (
                "redis+sentinel://:a@s1/m?sentinel_password=b&db=1",
                "redis+sentinel://:***@s1/m?sentinel_password=***&db=1",
            ),
            ("redis://:pa/ss@h:1/0", "redis://:***@h:1/0"),
            ("redis://:pa?ss@h", "redis://:***@h"),
            ("redis://secret@h", "redis://***@h"),
            ("user:pw@h", "<unparsable url>"),
            ("not a url", "not a url"),
        ],
    )
    def test_passwords_never_show(self, url: str, shown: str) -> None:
        assert redact_url(url) == shown
