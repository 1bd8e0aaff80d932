"""DNSBL and DNSWL scores, postscreen syntax: domain[=filter][*weight]."""
import pytest

from test_targrey import engine, to_rcpt

LISTED = "127.10.3.1"      # in bl (127.0.0.2) and bl2 (127.0.0.3)
WELL_KNOWN = "127.10.3.2"  # in wl (127.0.0.5)
ODD_CODE = "127.10.3.3"    # in bl with 127.0.0.99
NOT_LISTED = "127.10.3.4"

SITES = "bl.example.test=127.0.0.[2..11]*2, bl2.example.test, wl.example.test*-2"


def test_listed_client_is_refused_with_the_sites_named(mxguard, postfix):
    mx = engine(mxguard, postfix, dnsbl_sites=SITES, dnsbl_threshold="3")
    c, r, took = to_rcpt(mx, LISTED)
    assert r.code == 550 and took < 2.0, (r, took)
    assert "blocked using bl.example.test,bl2.example.test" in r.text \
        or "blocked using bl2.example.test,bl.example.test" in r.text, r
    c.close()
    mx.wait_for_log(r"verdict client=127\.10\.3\.1 .*verdict=black reason=dnsbl:score=3:")


def test_score_below_threshold_and_filtered_codes_do_not_count(mxguard, postfix):
    mx = engine(mxguard, postfix, dnsbl_sites=SITES, dnsbl_threshold="4", tarpit_delay="2s")
    c, r, took = to_rcpt(mx, LISTED)        # score 3 < 4: only a suspect (unknown name)
    assert r.code == 250 and took >= 1.9, (r, took)
    c.close()
    mx2 = engine(mxguard, postfix, dnsbl_sites=SITES, dnsbl_threshold="1", tarpit_delay="2s")
    c, r, took = to_rcpt(mx2, ODD_CODE)     # 127.0.0.99 is outside the filter
    assert r.code == 250 and took >= 1.9, (r, took)
    c.close()
    mx2.wait_for_log(r"verdict client=127\.10\.3\.3 .*reason=s25r:r0")


def test_whitelisted_by_score_passes_at_once(mxguard, postfix):
    mx = engine(mxguard, postfix, dnsbl_sites=SITES, tarpit_delay="5s")
    c, r, took = to_rcpt(mx, WELL_KNOWN)    # unknown name, but score -2 <= -1
    assert r.code == 250 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"verdict client=127\.10\.3\.2 .*verdict=white reason=dnswl:score=-2:"
                    r"wl\.example\.test")


def test_not_listed_is_left_to_the_other_rules(mxguard, postfix):
    mx = engine(mxguard, postfix, dnsbl_sites=SITES, tarpit_delay="2s")
    c, r, took = to_rcpt(mx, NOT_LISTED)
    assert r.code == 250 and took >= 1.9, (r, took)
    c.close()


@pytest.mark.parametrize("bad", ["bl.example.test*x", "bl.example.test=127.0.0",
                                 "bl.example.test=127.0.0.[3..2]", "=127.0.0.2"])
def test_bad_sites_are_a_clear_start_error(mxguard, postfix, bad):
    mx = mxguard(start=False, default_action="inspect", dnsbl_sites=bad)
    with pytest.raises(Exception) as exc:
        mx.start(timeout=5)
    assert "dnsbl_sites" in str(exc.value), exc.value
